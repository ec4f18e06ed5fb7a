// DOM helpers. Text goes in with textContent only (never innerHTML): transcripts, tool
// results and source titles come from a model and a network, so they are untrusted.

/** h("li", {class: "x", data: {role: "user"}, attrs: {lang: "en"}}, "text", childNode) */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = String(props.text);
  if (props.hidden) node.hidden = true;
  for (const [key, value] of Object.entries(props.data ?? {})) node.dataset[key] = String(value);
  for (const [key, value] of Object.entries(props.attrs ?? {})) {
    if (/^on/i.test(key) || key === "style" || key === "srcdoc") continue;
    node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An http(s) URL as a string, or "" for anything else (javascript:, data:, garbage). */
export function safeUrl(value, base = "https://invalid.example/") {
  try {
    const url = new URL(String(value ?? ""), base);
    if (url.origin === new URL(base).origin) return "";
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : "";
  } catch {
    return "";
  }
}

/** An external link that cannot reach back into the page. */
export function externalLink(url, text) {
  const href = safeUrl(url);
  if (!href) return h("span", { text: text || url });
  return h("a", { text: text || href, attrs: { href, rel: "noopener noreferrer nofollow", target: "_blank" } });
}

/** Readable JSON for a tool's arguments or result, capped so a huge result stays usable. */
export function prettyJson(value, limit = 4000) {
  if (value === undefined || value === null || value === "") return "";
  let text;
  try {
    text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  } catch {
    text = String(value);
  }
  return text.length > limit ? `${text.slice(0, limit)}\n…` : text;
}

export function clockTime(date = new Date()) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** Show or hide an element (the `hidden` attribute; CSS never overrides it). */
export function show(node, visible) {
  if (node) node.hidden = !visible;
}

/** A toggle button: aria-pressed, and the visible label for the current state. */
export function setPressed(button, pressed, label) {
  button.setAttribute("aria-pressed", String(Boolean(pressed)));
  if (label) setLabel(button, label);
}

/** Change a button's visible label (its .btn__label child, or the whole text). */
export function setLabel(button, label) {
  const target = button.querySelector(".btn__label") ?? button;
  target.textContent = label;
}

/** Keep a scroller pinned to the bottom if it was there before the content grew. */
export function stickToBottom(scroller, grow) {
  const pinned = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  grow();
  if (pinned) scroller.scrollTop = scroller.scrollHeight;
}

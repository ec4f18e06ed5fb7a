// The live transcript: one <li data-role> per turn and speaker, streamed deltas appended,
// replaced by the server's final text at the end of the turn. Same markup and classes as the
// conversation record (templates/assistant/conversation_detail.html).
import { externalLink, h, stickToBottom } from "./ui.js";

const WHO = { user: "You", model: "Pastra" };

export class Transcript {
  #list;
  #scroller;
  #open = { user: null, model: null };
  #typed = []; // typed messages of the current turn, shown before the server confirms them
  spokenReplies = true; // audio modality: the model's words are a transcript of its speech

  constructor(list, scroller = list.parentElement) {
    this.#list = list;
    this.#scroller = scroller;
  }

  get isEmpty() {
    return !this.#list.firstElementChild;
  }

  /** A message the user typed: shown at once, confirmed by the turn's final user text. */
  addTyped(text) {
    const item = this.#bubble("user", text, false);
    item.dataset.pending = "true";
    this.#typed.push(item);
    this.#append(item);
  }

  /** `transcript` event: {role, text, final, source}. */
  onTranscript({ role, text, final, source }) {
    if (role !== "user" && role !== "model") return;
    if (role === "user" && final && this.#typed.length && !this.#open.user) {
      this.#confirmTyped();
      return;
    }
    let item = this.#open[role];
    if (!item) {
      if (final && role === "user") text = this.#withoutTyped(text);
      if (!text) return;
      item = this.#bubble(role, "", role === "user" || (this.spokenReplies && source !== "text"));
      this.#open[role] = item;
      // Speech transcripts can arrive late: the user's words go before the reply they got.
      const reply = role === "user" ? this.#open.model : null;
      stickToBottom(this.#scroller, () => (reply ? reply.before(item) : this.#list.append(item)));
    }
    // Screen readers announce the turn once it is whole, not every fragment.
    if (!final) this.#list.setAttribute("aria-busy", "true");
    const body = item.querySelector(".bubble__text");
    stickToBottom(this.#scroller, () => {
      body.textContent = final ? this.#finalText(role, text) : body.textContent + text;
    });
    if (final) item.dataset.final = "true";
  }

  onInterrupted() {
    const item = this.#open.model;
    if (!item || item.dataset.interrupted) return;
    item.dataset.interrupted = "true";
    item.querySelector(".bubble__who").append(h("span", { class: "muted", text: " (interrupted)" }));
  }

  onTurnComplete() {
    this.#list.removeAttribute("aria-busy");
    this.#confirmTyped();
    this.#open = { user: null, model: null };
  }

  /** A non-turn line: code, its output, sources, tool use, a session marker. */
  addCode({ language, code }) {
    const title = h("p", { class: "card-event__title", text: "Ran code" });
    if (language) title.append(h("span", { class: "muted", text: ` (${String(language).toLowerCase()})` }));
    this.#append(h("li", { class: "event", data: { kind: "code" } },
      h("div", { class: "card-event" }, title, h("pre", {}, h("code", { text: code ?? "" })))));
  }

  addCodeResult({ outcome, output }) {
    const title = h("p", { class: "card-event__title", text: "Code output" });
    if (outcome) title.append(h("span", { class: "muted", text: ` (${outcome})` }));
    this.#append(h("li", { class: "event", data: { kind: "code.result" } },
      h("div", { class: "card-event" }, title, h("pre", {}, h("samp", { text: output ?? "" })))));
  }

  addGrounding({ sources = [], queries = [] }) {
    const card = h("div", { class: "card-event" }, h("p", { class: "card-event__title", text: "Sources" }));
    if (queries.length) card.append(h("p", { class: "muted", text: `Searched for: ${queries.join(", ")}` }));
    const list = h("ul", { class: "sources" });
    for (const { uri, url, title } of sources) list.append(h("li", {}, externalLink(uri ?? url, title)));
    if (list.firstChild) card.append(list);
    this.#append(h("li", { class: "event", data: { kind: "grounding" } }, card));
  }

  addMarker(text, kind = "marker", error = false) {
    const marker = h("p", { class: error ? "marker marker--error" : "marker", text });
    this.#append(h("li", { class: "event", data: { kind } }, marker));
  }

  #bubble(role, text, spoken) {
    const who = h("span", { class: "bubble__who", text: WHO[role] });
    if (spoken) who.append(h("span", { class: "muted", text: " (spoken)" }));
    return h("li", { class: "event", data: { role } },
      h("div", { class: `bubble bubble--${role}` }, who, h("p", { class: "bubble__text", text })));
  }

  #confirmTyped() {
    for (const item of this.#typed) delete item.dataset.pending;
    this.#typed = [];
  }

  // The final user text of a turn repeats what was typed in it; keep only the spoken rest.
  #withoutTyped(text) {
    let rest = text.trim();
    for (const item of this.#typed) {
      const typed = item.querySelector(".bubble__text").textContent.trim();
      if (rest.startsWith(typed)) rest = rest.slice(typed.length).trim();
    }
    return rest;
  }

  #finalText(role, text) {
    return role === "user" ? this.#withoutTyped(text) || text : text;
  }

  #append(item) {
    stickToBottom(this.#scroller, () => this.#list.append(item));
  }
}

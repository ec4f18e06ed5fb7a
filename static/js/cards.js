// The transcript's cards for what is not a turn: code the model ran, its output, and the
// sources a search answer rests on (the same markup as the conversation record).
import { externalLink, h } from "./ui.js";

export function codeCard({ language, code }) {
  const title = h("p", { class: "card-event__title", text: "Ran code" });
  if (language) title.append(h("span", { class: "muted", text: ` (${String(language).toLowerCase()})` }));
  return h("li", { class: "event", data: { kind: "code" } },
    h("div", { class: "card-event" }, title, h("pre", {}, h("code", { text: code ?? "" }))));
}

export function codeResultCard({ outcome, output }) {
  const title = h("p", { class: "card-event__title", text: "Code output" });
  if (outcome) title.append(h("span", { class: "muted", text: ` (${outcome})` }));
  return h("li", { class: "event", data: { kind: "code.result" } },
    h("div", { class: "card-event" }, title, h("pre", {}, h("samp", { text: output ?? "" }))));
}

export function groundingCard({ sources = [], queries = [] }) {
  const card = h("div", { class: "card-event" }, h("p", { class: "card-event__title", text: "Sources" }));
  if (queries.length) card.append(h("p", { class: "muted", text: `Searched for: ${queries.join(", ")}` }));
  const list = h("ul", { class: "sources" });
  for (const { uri, url, title } of sources) list.append(h("li", {}, externalLink(uri ?? url, title)));
  if (list.firstChild) card.append(list);
  return h("li", { class: "event", data: { kind: "grounding" } }, card);
}

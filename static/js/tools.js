// Tool activity cards: name, arguments, status, result, one card per call id, updated in
// place as `tool` events arrive (started → finished | cancelled). A failed call says so in
// plain words (the event's `message`, else a generic sentence), and its card comes into view.
import { clockTime, h, prettyJson, show } from "./ui.js";

export const TOOL_FAILED = "The tool failed.";

const STATUS = {
  started: "Running…",
  finished: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

export class ToolActivity {
  #panel;
  #list;
  #cards = new Map();

  constructor(panel) {
    this.#panel = panel;
    this.#list = panel.querySelector("[data-testid='tool-activity']") ?? panel;
  }

  get count() {
    return this.#cards.size;
  }

  /** A `tool` event (server-run function) or `tool.call` (a function the page must run). */
  onEvent({ phase = "started", id, name, executor, ok, duration_ms: ms, args, response, result, summary, error, message }) {
    const key = String(id ?? `${name}-${this.#cards.size}`);
    let card = this.#cards.get(key);
    if (!card) {
      card = this.#card(key, name, executor);
      this.#cards.set(key, card);
      this.#list.prepend(card);
      show(this.#panel, true);
    }
    const status = phase === "finished" && ok === false ? "failed" : phase;
    card.dataset.status = status;
    card.classList.toggle("card-event--error", status === "failed" || status === "cancelled");
    let label = STATUS[status] ?? phase;
    if (status !== "started" && Number.isFinite(ms)) label += ` in ${Math.round(ms)} ms`;
    card.querySelector(".tool-card__status").textContent = label;
    if (args !== undefined) this.#detail(card, "args", "Arguments", args, true);
    const outcome = response ?? result ?? summary ?? error;
    if (outcome !== undefined) {
      // Once there is an outcome, it is what matters: show it, fold the arguments away
      // (a phone shows little of the panel at once).
      this.#detail(card, "result", status === "failed" ? "Error" : "Result", outcome, true);
      const argsBlock = card.querySelector('[data-detail="args"]');
      if (argsBlock) argsBlock.open = false;
    }
    if (status === "failed") this.#failed(card, message);
    return card;
  }

  #failed(card, message) {
    let line = card.querySelector(".tool-card__message");
    if (!line) {
      line = h("p", { class: "tool-card__message", data: { testid: "tool-message" }, attrs: { role: "status" } });
      card.querySelector(".card-event__title").after(line);
    }
    line.textContent = (typeof message === "string" && message.trim()) || TOOL_FAILED;
    card.scrollIntoView?.({ block: "nearest" });
  }

  #card(id, name, executor) {
    const now = new Date();
    const title = h("p", { class: "card-event__title" },
      h("code", { text: name || "tool" }),
      h("span", { class: "tool-card__status" }),
      h("time", { class: "tool-card__time", text: clockTime(now), attrs: { datetime: now.toISOString() } }));
    const where = executor === "client" ? "Runs in this page" : "Runs on the server";
    return h("li", { class: "card-event tool-card", data: { toolId: id, executor: executor ?? "server" } },
      title, h("p", { class: "visually-hidden", text: where }));
  }

  #detail(card, kind, label, value, open) {
    let block = card.querySelector(`[data-detail="${kind}"]`);
    if (!block) {
      block = h("details", { data: { detail: kind } }, h("summary", { text: label }), h("pre", {}, h("code")));
      if (open) block.open = true;
      card.append(block);
    }
    block.querySelector("summary").textContent = label;
    block.querySelector("code").textContent = prettyJson(value) || "(empty)";
  }
}

// The live transcript: one <li data-role> per turn and speaker, streamed deltas appended,
// replaced by the server's final text at the end of the turn; the user's interim words while
// they speak; why a turn has no (whole) reply (data-reason); a "thinking" line while the model
// works. Same markup and classes as the conversation record (conversation_detail.html).
import { codeCard, codeResultCard, groundingCard } from "./cards.js";
import { h, stickToBottom } from "./ui.js";

const WHO = { user: "You", model: "Pastra" };

export class Transcript {
  #list;
  #scroller;
  #open = { user: null, model: null };
  #typed = []; // typed messages of the current turn, shown before the server confirms them
  #thinking = null; // the "Thinking…" line, while the model works on a reply
  #lastModel = null; // the latest reply (it may still be playing after its turn ended)
  spokenReplies = true; // audio modality: the model's words are a transcript of its speech

  constructor(list, scroller = list.parentElement) {
    this.#list = list;
    this.#scroller = scroller;
  }

  typed = (id) => (id ? this.#list.querySelector(`[data-message-id="${CSS.escape(id)}"]`) : null);
  get isEmpty() {
    return !this.#list.firstElementChild;
  }

  /** A message the user typed: shown at once, confirmed by the turn's final user text. */
  addTyped(text, id = "") {
    const item = this.#bubble("user", text, false);
    Object.assign(item.dataset, { pending: "true", messageId: id });
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
      item = this.#openBubble(role, role === "user" || (this.spokenReplies && source !== "text"));
    }
    if (role === "model") this.thinking("");
    // Screen readers announce the turn once it is whole, not every fragment.
    if (!final) this.#list.setAttribute("aria-busy", "true");
    const body = item.querySelector(".bubble__text");
    this.#settleInterim(item, false); // the words so far are replaced by the transcription
    stickToBottom(this.#scroller, () => {
      body.textContent = final ? this.#finalText(role, text) : body.textContent + text;
    });
    if (final) item.dataset.final = "true";
  }

  /** `transcript.interim`: the user's words so far, replaced by each update and the final. */
  onInterim({ text }) {
    // Live words: at the end, even after a reply being cut by this very speech.
    const item = this.#open.user ?? (text ? this.#openBubble("user", true, false) : null);
    if (!item) return;
    const body = item.querySelector(".bubble__text");
    const interim = body.querySelector(".bubble__interim") ?? body.appendChild(h("span", { class: "bubble__interim" }));
    this.#list.setAttribute("aria-busy", "true");
    stickToBottom(this.#scroller, () => (interim.textContent = text));
    item.dataset.interim = "true";
  }

  /** `turn.reason`: the turn has no (whole) reply; say why, on the model's side. */
  onTurnReason({ reason, message }) {
    this.thinking("");
    const item = this.#open.model ?? this.#openBubble("model", false);
    item.dataset.reason = reason || "UNKNOWN";
    const note = h("p", { class: "bubble__reason", text: message || "The reply ended without an answer." });
    stickToBottom(this.#scroller, () => item.querySelector(".bubble").append(note));
  }

  /** The model is working on a reply ("Thinking…"), or not (""): one line, kept last. */
  thinking(text) {
    this.#thinking?.remove();
    const line = text && h("li", { class: "event", data: { kind: "thinking" } }, h("p", { class: "marker marker--thinking", text }));
    this.#thinking = line || null;
    if (line) this.#append(line);
  }

  /** The reply was stopped: "(interrupted)", and its words cut to those heard (if known). */
  onInterrupted(heard) {
    const item = this.#open.model ?? this.#lastModel;
    if (!item) return;
    if (heard !== undefined) {
      const body = item.querySelector(".bubble__text");
      stickToBottom(this.#scroller, () => (body.textContent = heard && `${heard}…`));
      item.dataset.heard = heard;
    }
    if (item.dataset.interrupted) return;
    item.dataset.interrupted = "true";
    item.querySelector(".bubble__who").append(h("span", { class: "muted", text: " (interrupted)" }));
  }

  onTurnComplete() {
    this.#list.removeAttribute("aria-busy");
    this.#confirmTyped();
    this.thinking("");
    // Someone still speaking (interim words only: a barge-in) goes on in the next turn.
    const user = this.#open.user;
    const speaking = user?.dataset.interim && user.querySelector(".bubble__text").firstChild?.nodeType !== 3;
    if (user && !speaking) this.#settleInterim(user, true);
    this.#open = { user: speaking ? user : null, model: null };
  }

  /** A non-turn line: code, its output, sources (cards.js), tool use, a session marker. */
  addCode = (event) => this.#append(codeCard(event));
  addCodeResult = (event) => this.#append(codeResultCard(event));
  addGrounding = (event) => this.#append(groundingCard(event));

  addMarker(text, kind = "marker", error = false) {
    const marker = h("p", { class: error ? "marker marker--error" : "marker", text });
    const item = h("li", { class: "event", data: { kind } }, marker);
    this.#append(item);
    return item;
  }

  #openBubble(role, spoken, late = role === "user") {
    const item = (this.#open[role] = this.#bubble(role, "", spoken));
    if (role === "model") this.#lastModel = item;
    // Speech transcripts can arrive late: the user's words go before the reply they got.
    const reply = late ? this.#open.model : null;
    stickToBottom(this.#scroller, () => (reply ? reply.before(item) : this.#list.append(item)));
    return item;
  }

  // Interim words are dropped when the transcription arrives, kept as text when none does.
  #settleInterim(item, keep) {
    const interim = item.querySelector(".bubble__interim");
    if (!interim) return;
    if (keep) interim.replaceWith(interim.textContent);
    else interim.remove();
    delete item.dataset.interim;
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

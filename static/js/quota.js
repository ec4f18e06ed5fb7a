// The day's remaining live time (`quota-remaining`): the server's figure at page load, counted
// down each second while a session is live (the ledger charges live time as it is used).
const LIVE_STATES = new Set(["connecting", "ready", "listening", "speaking", "reconnecting"]);

/** "59 min left today", "45 s left today" or "No live time left today". */
export function quotaText(seconds) {
  const left = Math.max(0, Math.floor(seconds));
  if (left <= 0) return "No live time left today";
  if (left < 60) return `${left} s left today`;
  return `${Math.floor(left / 60)} min left today`;
}

export class Quota {
  #element;
  #root;
  #seconds;
  #timer = 0;

  constructor(element, root) {
    this.#element = element;
    this.#root = root;
    this.#seconds = Number(element?.dataset.seconds ?? NaN);
  }

  get seconds() {
    return this.#seconds;
  }

  /** One second passed: count it if a session is live. */
  tick() {
    if (!this.#element || Number.isNaN(this.#seconds)) return;
    if (!LIVE_STATES.has(this.#root.dataset.state)) return;
    this.#seconds = Math.max(0, this.#seconds - 1);
    this.#element.dataset.seconds = String(Math.floor(this.#seconds));
    this.#element.textContent = quotaText(this.#seconds);
  }

  start() {
    if (this.#element && !this.#timer) this.#timer = setInterval(() => this.tick(), 1000);
  }
}

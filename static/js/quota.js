// The day's remaining live time (`quota-remaining`): the server's figure at page load, counted
// down each second while a session is live (the ledger charges live time as it is used), and
// the server's figure again when a session ends (GET data-url).
const REFRESH_DELAY_MS = 1500;
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
  #live = false;

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
    const live = this.#observe();
    if (live) this.#show(this.#seconds - 1);
  }

  /** Note the page's state; a session that just ended (however short) asks the server what
   * is left, once the server has released its lease. Returns whether a session is live. */
  #observe() {
    const live = LIVE_STATES.has(this.#root.dataset.state);
    if (this.#live && !live) setTimeout(() => this.refresh(), REFRESH_DELAY_MS);
    this.#live = live;
    return live;
  }

  /** Ask the server what is left (the ledger, after the session's final charge). */
  async refresh(fetchImpl = globalThis.fetch) {
    const url = this.#element?.dataset.url;
    if (!url || !fetchImpl) return;
    try {
      const response = await fetchImpl(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const { seconds } = await response.json();
      if (!Number.isFinite(seconds) || this.#live) return;
      this.#show(seconds);
      this.#element.dataset.refreshed = String(Date.now());
    } catch {
      // Offline: the countdown's figure stays; the next session end asks again.
    }
  }

  #show(seconds) {
    this.#seconds = Math.max(0, seconds);
    this.#element.dataset.seconds = String(Math.floor(this.#seconds));
    this.#element.textContent = quotaText(this.#seconds);
  }

  start() {
    if (!this.#element || this.#timer) return;
    this.#timer = setInterval(() => this.tick(), 1000);
    // Every state change, not only those a tick sees: a session can last less than a second.
    const Observer = globalThis.MutationObserver;
    if (Observer) new Observer(() => this.#observe()).observe(this.#root, { attributeFilter: ["data-state"] });
  }
}

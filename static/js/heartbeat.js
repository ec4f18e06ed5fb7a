// Application-level heartbeat: a ping every 20 s; no answer (any message) within 10 s means
// the connection is dead even if the browser has not noticed (a phone that changed network).
// So does a handshake unanswered for 10 s (the browser itself waits minutes on a dead link).

export const CONNECT_TIMEOUT_MS = 10000;

export class Heartbeat {
  #timers;
  #every;
  #within;
  #interval = null;
  #deadline = null;

  constructor(timers = globalThis, { every = 20000, within = 10000 } = {}) {
    this.#timers = timers;
    this.#every = every;
    this.#within = within;
  }

  /** A handshake began: `dead` unless start() (the socket opened) or stop() comes in time. */
  connecting(dead) {
    this.stop();
    this.#deadline = this.#timers.setTimeout(dead, CONNECT_TIMEOUT_MS);
  }

  start(ping, dead) {
    this.stop();
    this.#interval = this.#timers.setInterval(() => {
      ping();
      if (this.#deadline === null) this.#deadline = this.#timers.setTimeout(dead, this.#within);
    }, this.#every);
  }

  /** Anything arrived: the connection is alive. */
  alive() {
    this.#timers.clearTimeout(this.#deadline);
    this.#deadline = null;
  }

  stop() {
    this.alive();
    this.#timers.clearInterval(this.#interval);
    this.#interval = null;
  }
}

// Keep the screen on while a voice session runs (the browser drops the lock when the page is
// hidden; it is taken again when the page comes back). Silently absent where unsupported.

export class ScreenWakeLock {
  #sentinel = null;
  #wanted = false;

  constructor() {
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.#wanted && !this.#sentinel) this.#request();
    });
  }

  get held() {
    return this.#sentinel !== null;
  }

  acquire() {
    this.#wanted = true;
    if (!this.#sentinel) this.#request();
  }

  release() {
    this.#wanted = false;
    const sentinel = this.#sentinel;
    this.#sentinel = null;
    sentinel?.release().catch(() => {});
  }

  async #request() {
    if (!("wakeLock" in navigator) || document.visibilityState !== "visible") return;
    try {
      const sentinel = await navigator.wakeLock.request("screen");
      if (!this.#wanted) return void sentinel.release().catch(() => {});
      this.#sentinel = sentinel;
      sentinel.addEventListener("release", () => {
        if (this.#sentinel === sentinel) this.#sentinel = null;
      });
    } catch {
      // Denied (battery saver, not focused): the session works without it.
    }
  }
}

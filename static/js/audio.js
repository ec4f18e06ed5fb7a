// One AudioContext for capture and playback, created and resumed inside the first tap
// (iOS and autoplay rules), with both worklet modules loaded once.

const WORKLETS = [
  new URL("./worklets/capture.worklet.js", import.meta.url),
  new URL("./worklets/playback.worklet.js", import.meta.url),
];

export class AudioEngine {
  #context = null;
  #ready = null;

  get context() {
    return this.#context;
  }

  /** Call from a user gesture. Returns a promise that resolves when the worklets are loaded. */
  unlock() {
    if (!this.#context) {
      const Context = globalThis.AudioContext ?? globalThis.webkitAudioContext;
      if (!Context) return Promise.reject(new Error("Web Audio is not available in this browser."));
      this.#context = new Context({ latencyHint: "interactive" });
      const worklet = this.#context.audioWorklet;
      this.#ready = worklet
        ? Promise.all(WORKLETS.map((url) => worklet.addModule(url)))
        : Promise.reject(new Error("AudioWorklet needs a secure (HTTPS) page."));
      this.#ready.catch(() => {});
    }
    // Until audio runs, every gesture plays the silent buffer again: the first one may not
    // have counted as a gesture (a touch's pointerdown does not).
    if (this.#context.state !== "running") this.#primeIos();
    this.resume();
    return this.#ready;
  }

  /** Resume after the page comes back (a suspended context plays nothing). */
  resume() {
    const context = this.#context;
    if (context && context.state !== "running" && context.state !== "closed") {
      context.resume().catch(() => {});
    }
  }

  async ready() {
    if (!this.#ready) throw new Error("Audio is not unlocked yet.");
    await this.#ready;
    return this.#context;
  }

  // Safari starts audio output only after something plays inside a gesture.
  #primeIos() {
    const context = this.#context;
    const source = context.createBufferSource();
    source.buffer = context.createBuffer(1, 1, context.sampleRate);
    source.connect(context.destination);
    source.start();
  }
}

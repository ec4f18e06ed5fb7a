// The audio side of a session: one AudioContext, the microphone (16 kHz chunks out), the
// player (24 kHz in), the input and output level meters, local voice detection ("speech"
// events: the person starts or stops speaking), and the screen wake lock while talking.
import { AudioEngine } from "./audio.js";
import { Mic } from "./mic.js";
import { Player } from "./player.js";
import { ScreenWakeLock } from "./wakelock.js";

export class Voice extends EventTarget {
  #engine = new AudioEngine();
  #wake = new ScreenWakeLock();
  #mic;
  #view;
  #state;
  player;

  /** view: TalkView; state: PageState; sendAudio(Int16Array) sends one chunk; vad: the
   * local voice detection's {threshold, attackMs, hangoverMs} (vad.js). */
  constructor({ view, state, sendAudio, vad = {} }) {
    super();
    this.#view = view;
    this.#state = state;
    this.#mic = new Mic(this.#engine, vad);
    this.player = new Player(this.#engine);
    const on = (target, type, handler) => target.addEventListener(type, ({ detail }) => handler(detail));
    on(this.#mic, "chunk", ({ pcm }) => sendAudio(pcm));
    on(this.#mic, "level", ({ level }) => view.level(level));
    on(this.#mic, "ended", () => this.#changed());
    on(this.#mic, "speech", (detail) => {
      state.update({ speech: detail.state === "start" });
      this.dispatchEvent(new CustomEvent("speech", { detail }));
    });
    on(this.player, "stats", (stats) => {
      view.player(stats);
      view.outputLevel(stats.playing ? stats.level : 0);
      state.update({ playing: stats.playing });
    });
    on(this.player, "flushed", (detail) => view.flushed(detail));
    document.addEventListener("visibilitychange", () => document.hidden || this.#engine.resume());
  }

  get micActive() {
    return this.#mic.active;
  }

  get muted() {
    return this.#mic.muted;
  }

  /** Create or resume the AudioContext: call inside a tap (iOS, autoplay rules). */
  unlock() {
    this.#engine.unlock().catch(() => {});
  }

  /** Ask for the microphone and start sending; rejects with the browser's error. */
  async startMic() {
    await this.#mic.start();
    this.#wake.acquire();
    this.#changed();
  }

  /** Mute or unmute; returns whether it is now muted. */
  toggleMute() {
    if (!this.#mic.active) return false;
    this.#mic.setMuted(!this.#mic.muted);
    this.#changed();
    return this.#mic.muted;
  }

  /** Microphone off, playback flushed, wake lock released. */
  release() {
    this.#mic.stop();
    this.player.flush();
    this.#changed();
  }

  #changed() {
    const active = this.#mic.active;
    this.#view.microphone(active, this.#mic.muted);
    if (!active) this.#wake.release();
    const mic = active && !this.#mic.muted;
    this.#state.update(mic ? { mic } : { mic, speech: false });
  }
}

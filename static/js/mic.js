// Microphone → capture worklet → 16 kHz PCM16 chunks of ~100 ms. Echo cancellation and noise
// suppression on; errors surface (start() rejects) instead of being swallowed.
// Events: "chunk" {pcm: Int16Array}, "level" {level: 0..1}, "ended" (device lost),
// "speech" {state: "start" | "end", at} (local voice detection; `at` is performance.now()).
import { microphoneConstraint } from "./devices.js";
import { stopped, unsupported } from "./errors.js";
import { INPUT_RATE } from "./protocol.js";

export class Mic extends EventTarget {
  #engine;
  #stream = null;
  #source = null;
  #node = null;
  #muted = false;
  #starting = null;
  #generation = 0;
  #vad;

  /** vad: {threshold, attackMs, hangoverMs} for the local voice detection (vad.js). */
  constructor(engine, vad = {}) {
    super();
    this.#engine = engine;
    this.#vad = vad;
  }

  get active() {
    return this.#stream !== null;
  }

  get muted() {
    return this.#muted;
  }

  /** Ask for the microphone and start capturing. Call from a tap (after engine.unlock()). */
  start() {
    if (this.#stream) return Promise.resolve();
    this.#starting ??= this.#open().finally(() => (this.#starting = null));
    return this.#starting;
  }

  async #open() {
    if (!navigator.mediaDevices?.getUserMedia) throw unsupported("getUserMedia");
    const generation = this.#generation;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        ...microphoneConstraint(), // the one chosen in Settings (devices.js), else the default
        channelCount: 1,
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      },
    });
    let context;
    try {
      context = await this.#engine.ready();
      if (generation !== this.#generation) throw stopped();
    } catch (error) {
      for (const track of stream.getTracks()) track.stop();
      throw error;
    }
    const node = new AudioWorkletNode(context, "pastra-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      processorOptions: { targetRate: INPUT_RATE, chunkMs: 100, vad: this.#vad },
    });
    node.port.onmessage = ({ data }) => this.#chunk(data);
    const source = context.createMediaStreamSource(stream);
    source.connect(node);
    for (const track of stream.getAudioTracks()) {
      track.enabled = !this.#muted;
      track.addEventListener("ended", () => {
        if (this.#stream !== stream) return;
        this.stop();
        this.dispatchEvent(new Event("ended"));
      });
    }
    this.#stream = stream;
    this.#source = source;
    this.#node = node;
  }

  /** While muted nothing is sent (the track is disabled, chunks are dropped). */
  setMuted(muted) {
    this.#muted = Boolean(muted);
    for (const track of this.#stream?.getAudioTracks() ?? []) track.enabled = !this.#muted;
    if (this.#muted) this.#level(0);
  }

  /** Release the device (the browser's recording indicator goes off). */
  stop() {
    this.#generation += 1;
    for (const track of this.#stream?.getTracks() ?? []) track.stop();
    this.#source?.disconnect();
    if (this.#node) this.#node.port.onmessage = null;
    this.#stream = this.#source = this.#node = null;
    this.#muted = false;
    this.#level(0);
  }

  #chunk({ pcm, level, vad }) {
    if (this.#muted || !this.#stream) return;
    if (vad) return this.dispatchEvent(new CustomEvent("speech", { detail: { state: vad, at: performance.now() } }));
    this.dispatchEvent(new CustomEvent("chunk", { detail: { pcm: new Int16Array(pcm) } }));
    this.#level(level);
  }

  #level(level) {
    this.dispatchEvent(new CustomEvent("level", { detail: { level } }));
  }
}

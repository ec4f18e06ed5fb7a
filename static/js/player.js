// The model's voice: 24 kHz PCM16 chunks → the playback worklet (jitter buffer, resampling).
// Events: "stats" {playing, playedMs, bufferedMs, underruns, level}; "flushed" {ms, sinceMs}:
// the time from flush() to the audio thread's acknowledgement (silent 5 ms later), and from
// the moment given to flush() (the person's action) to it (the barge-in budget is 100 ms).
import { OUTPUT_RATE } from "./protocol.js";

export class Player extends EventTarget {
  #engine;
  #node = null;
  #starting = null;
  #pending = [];
  #flushAt = 0;
  #since = 0;
  stats = { playing: false, playedMs: 0, bufferedMs: 0, underruns: 0, level: 0 };

  constructor(engine) {
    super();
    this.#engine = engine;
  }

  /** Queue one chunk (an ArrayBuffer of PCM16 LE). The buffer is transferred. */
  enqueue(buffer) {
    if (!buffer.byteLength) return;
    if (this.#node) this.#node.port.postMessage({ type: "pcm", pcm: buffer }, [buffer]);
    else {
      this.#pending.push(buffer);
      this.#start();
    }
  }

  /** The reply is complete: play out the rest without waiting for more. */
  end() {
    this.#post({ type: "end" });
  }

  /** Stop at once (barge-in, stop): queued audio is dropped after a 5 ms fade. `since`
   * (performance.now() time of the person's action) is what the "flushed" event times from. */
  flush(since = performance.now()) {
    this.#pending = [];
    this.#flushAt = performance.now();
    this.#since = Math.min(since, this.#flushAt);
    this.#post({ type: "flush" });
  }

  #post(message) {
    this.#node?.port.postMessage(message);
  }

  #start() {
    this.#starting ??= this.#engine
      .ready()
      .then((context) => {
        const node = new AudioWorkletNode(context, "pastra-playback", {
          numberOfInputs: 0,
          outputChannelCount: [1],
          processorOptions: { sourceRate: OUTPUT_RATE, prebufferMs: 80 },
        });
        node.port.onmessage = ({ data }) => this.#message(data);
        node.connect(context.destination);
        this.#node = node;
        for (const buffer of this.#pending.splice(0)) this.enqueue(buffer);
      })
      .catch((error) => {
        this.#starting = null;
        this.#pending = [];
        this.dispatchEvent(new CustomEvent("error", { detail: error }));
      });
  }

  #message(data) {
    if (data.type === "flushed") {
      const now = performance.now();
      const ms = this.#flushAt ? now - this.#flushAt : 0;
      const sinceMs = this.#since ? now - this.#since : ms;
      this.dispatchEvent(new CustomEvent("flushed", { detail: { ms, sinceMs } }));
    } else if (data.type === "stats") {
      const { playing, playedMs, bufferedMs, underruns, level = 0 } = data;
      this.stats = { playing, playedMs, bufferedMs, underruns, level };
      this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
    }
  }
}

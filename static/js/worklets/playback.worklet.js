// Audio thread: 24 kHz PCM16 from the socket → a jitter buffer → the device's rate.
// Messages in: {type: "pcm", pcm: ArrayBuffer} | {type: "end"} | {type: "flush"}.
// Messages out: {type: "flushed"} at once on flush; {type: "stats", ...} about 10 times a
// second while anything is playing and once when it stops, with the output's meter level.
import { JitterBuffer } from "../jitter.js";
import { meterLevel } from "../resampler.js";

const REPORT_FRAMES = 4800; // about 100 ms at 48 kHz

class PastraPlayback extends AudioWorkletProcessor {
  #buffer;
  #sinceReport = 0;
  #energy = 0;
  #wasPlaying = false;

  constructor({ processorOptions = {} }) {
    super();
    this.#buffer = new JitterBuffer({
      sourceRate: processorOptions.sourceRate ?? 24000,
      outputRate: sampleRate,
      prebufferMs: processorOptions.prebufferMs ?? 80,
    });
    this.port.onmessage = ({ data }) => this.#command(data);
  }

  #command(data) {
    if (data.type === "pcm") {
      this.#buffer.push(new Int16Array(data.pcm));
    } else if (data.type === "end") {
      this.#buffer.markEnd();
    } else if (data.type === "flush") {
      this.#buffer.flush(5);
      this.port.postMessage({ type: "flushed" });
      this.#report();
    }
  }

  process(_inputs, outputs) {
    const output = outputs[0];
    const first = output[0];
    if (!first) return true;
    this.#buffer.pull(first);
    for (let c = 1; c < output.length; c++) output[c].set(first);
    const playing = this.#buffer.playing || this.#buffer.buffered > 0;
    this.#sinceReport += first.length;
    for (const s of first) this.#energy += s * s;
    if (playing !== this.#wasPlaying || (playing && this.#sinceReport >= REPORT_FRAMES)) this.#report();
    return true;
  }

  #report() {
    const buffer = this.#buffer;
    this.#wasPlaying = buffer.playing || buffer.buffered > 0;
    const level = this.#wasPlaying && this.#sinceReport ? meterLevel(Math.sqrt(this.#energy / this.#sinceReport)) : 0;
    this.#sinceReport = this.#energy = 0;
    this.port.postMessage({
      type: "stats",
      playing: this.#wasPlaying,
      playedMs: Math.round(buffer.playedMs),
      bufferedMs: Math.round(buffer.bufferedMs),
      underruns: buffer.underruns,
      level,
    });
  }
}

registerProcessor("pastra-playback", PastraPlayback);

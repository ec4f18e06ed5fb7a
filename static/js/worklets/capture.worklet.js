// Audio thread: microphone at the device's rate → 16 kHz PCM16, ~100 ms per message, with a
// level for the meter, and the local voice detection's start/end as soon as they happen.
// Resampling lives in ../resampler.js, detection in ../vad.js (both node-tested).
// Messages out: {pcm: ArrayBuffer (transferred), level: 0..1} | {vad: "start" | "end"}.
import { CaptureChunker } from "../resampler.js";
import { VoiceDetector } from "../vad.js";

class PastraCapture extends AudioWorkletProcessor {
  #chunker;
  #vad;

  constructor({ processorOptions = {} }) {
    super();
    this.#chunker = new CaptureChunker({
      inputRate: sampleRate,
      outputRate: processorOptions.targetRate ?? 16000,
      chunkMs: processorOptions.chunkMs ?? 100,
    });
    this.#vad = new VoiceDetector({ sampleRate, ...(processorOptions.vad ?? {}) });
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    const vad = this.#vad.push(channel);
    if (vad) this.port.postMessage({ vad });
    for (const { pcm, level } of this.#chunker.push(channel)) {
      this.port.postMessage({ pcm: pcm.buffer, level }, [pcm.buffer]);
    }
    return true;
  }
}

registerProcessor("pastra-capture", PastraCapture);

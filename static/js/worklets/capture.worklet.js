// Audio thread: microphone at the device's rate → 16 kHz PCM16, ~100 ms per message, with a
// level for the meter. Resampling and clamping live in ../resampler.js (node-tested).
// Messages out: {pcm: ArrayBuffer (transferred), level: 0..1}.
import { CaptureChunker } from "../resampler.js";

class PastraCapture extends AudioWorkletProcessor {
  #chunker;

  constructor({ processorOptions = {} }) {
    super();
    this.#chunker = new CaptureChunker({
      inputRate: sampleRate,
      outputRate: processorOptions.targetRate ?? 16000,
      chunkMs: processorOptions.chunkMs ?? 100,
    });
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    for (const { pcm, level } of this.#chunker.push(channel)) {
      this.port.postMessage({ pcm: pcm.buffer, level }, [pcm.buffer]);
    }
    return true;
  }
}

registerProcessor("pastra-capture", PastraCapture);

// Capture DSP, pure (no DOM, no Web Audio): imported by worklets/capture.worklet.js and by
// the node tests. Device-rate Float32 in, 16 kHz Int16 chunks out.

/** Float sample in [-1, 1] → Int16, clamped (the tutorial wrapped +1.0 to -32768). */
export function toInt16(sample) {
  const s = sample > 1 ? 1 : sample < -1 ? -1 : sample || 0;
  return s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff);
}

/**
 * Area-averaging resampler: every output sample is the mean of the input over its own time
 * span (a box low-pass before decimation), exact for any rate ratio and continuous across
 * blocks. Upsampling (a rare 8 kHz device) degrades to a sample-and-hold.
 */
export class Resampler {
  #step;
  #acc = 0;
  #remaining;
  #out = new Float32Array(0);

  constructor(fromRate, toRate) {
    if (!(fromRate > 0 && toRate > 0)) throw new RangeError("rates must be positive");
    this.#step = fromRate / toRate;
    this.#remaining = this.#step;
  }

  /**
   * Resample one block. The result is a view of an internal buffer, valid until the next
   * call (no garbage on the audio thread); its length varies by ±1 between blocks.
   */
  process(input) {
    const step = this.#step;
    const size = Math.ceil((input.length + step) / step);
    if (this.#out.length < size) this.#out = new Float32Array(size);
    const out = this.#out;
    let n = 0;
    let acc = this.#acc;
    let remaining = this.#remaining;
    for (const x of input) {
      let left = 1;
      while (left > 0) {
        const take = left < remaining ? left : remaining;
        acc += x * take;
        remaining -= take;
        left -= take;
        if (remaining <= 1e-9) {
          out[n++] = acc / step;
          acc = 0;
          remaining = step;
        }
      }
    }
    this.#acc = acc;
    this.#remaining = remaining;
    return out.subarray(0, n);
  }
}

/** RMS of a block of float samples. */
export function rms(samples) {
  let sum = 0;
  for (const x of samples) sum += x * x;
  return samples.length ? Math.sqrt(sum / samples.length) : 0;
}

/** A level meter value in [0, 1]: -60 dBFS → 0, 0 dBFS → 1. */
export function meterLevel(value) {
  if (!(value > 0)) return 0;
  const db = 20 * Math.log10(value);
  return Math.min(1, Math.max(0, (db + 60) / 60));
}

/**
 * Device-rate blocks in, fixed-size Int16 chunks out (100 ms at 16 kHz by default), each
 * with the meter level of the audio it holds.
 */
export class CaptureChunker {
  #resampler;
  #chunk;
  #filled = 0;
  #energy = 0;

  constructor({ inputRate, outputRate = 16000, chunkMs = 100 }) {
    this.#resampler = new Resampler(inputRate, outputRate);
    this.#chunk = new Int16Array(Math.round((outputRate * chunkMs) / 1000));
  }

  get chunkSamples() {
    return this.#chunk.length;
  }

  /** Push one block; returns the chunks it completed: [{pcm: Int16Array, level}]. */
  push(block) {
    const done = [];
    for (const x of this.#resampler.process(block)) {
      const s = x > 1 ? 1 : x < -1 ? -1 : x;
      this.#energy += s * s;
      this.#chunk[this.#filled++] = toInt16(s);
      if (this.#filled === this.#chunk.length) {
        const level = meterLevel(Math.sqrt(this.#energy / this.#filled));
        done.push({ pcm: this.#chunk, level });
        this.#chunk = new Int16Array(this.#chunk.length);
        this.#filled = 0;
        this.#energy = 0;
      }
    }
    return done;
  }
}

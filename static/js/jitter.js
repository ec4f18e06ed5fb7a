// Playback jitter buffer, pure (no DOM, no Web Audio): imported by worklets/playback.worklet.js
// and by the node tests. 24 kHz Int16 chunks in; device-rate Float32 out, gap-free, linearly
// interpolated; a short pre-buffer absorbs network jitter; flush() fades out in a few ms.

export class JitterBuffer {
  #ring;
  #read = 0; // index of the oldest sample
  #size = 0; // samples held
  #pos = 0; // fractional read offset past #read, in source samples
  #step;
  #prebuffer;
  #maxWait;
  #maxSamples;
  #waited = 0;
  #playing = false;
  #ending = false;
  #fade = 0;
  #fadeLength = 0;
  played = 0; // source samples played
  underruns = 0;
  dropped = 0; // source samples dropped because the buffer was full

  constructor({ sourceRate = 24000, outputRate, prebufferMs = 80, maxWaitMs = 150, maxSeconds = 300 }) {
    this.sourceRate = sourceRate;
    this.#step = sourceRate / outputRate;
    this.#prebuffer = Math.round((sourceRate * prebufferMs) / 1000);
    this.#maxWait = Math.round((outputRate * maxWaitMs) / 1000);
    this.#maxSamples = sourceRate * maxSeconds;
    this.#ring = new Float32Array(sourceRate * 10);
  }

  get buffered() {
    return this.#size;
  }

  get bufferedMs() {
    return (this.#size * 1000) / this.sourceRate;
  }

  get playedMs() {
    return (this.played * 1000) / this.sourceRate;
  }

  /** True while audio (not padding) is coming out. */
  get playing() {
    return this.#playing;
  }

  /** Append PCM16 little-endian samples (an Int16Array). */
  push(int16) {
    this.#ending = false;
    if (this.#fade) this.#clear();
    this.#reserve(int16.length);
    const ring = this.#ring;
    let write = (this.#read + this.#size) % ring.length;
    for (const s of int16) {
      ring[write] = s / 0x8000;
      write = write + 1 === ring.length ? 0 : write + 1;
    }
    this.#size += int16.length;
  }

  /** No more audio for this reply: play what is left without waiting or counting a stall. */
  markEnd() {
    this.#ending = true;
  }

  /** Drop everything queued after a short fade (default 5 ms) so nothing clicks. */
  flush(fadeMs = 5) {
    const frames = Math.max(1, Math.round((fadeMs * this.sourceRate) / this.#step / 1000));
    if (!this.#playing || this.#size < 2) return this.#clear();
    this.#fade = this.#fadeLength = frames;
  }

  /** Fill `out` (device rate). Returns how many frames carried audio. */
  pull(out) {
    out.fill(0);
    if (!this.#playing) {
      if (this.#size === 0) return 0;
      this.#waited += out.length;
      if (this.#size < this.#prebuffer && this.#waited < this.#maxWait && !this.#ending) return 0;
      this.#playing = true;
    }
    const ring = this.#ring;
    const n = ring.length;
    let frames = 0;
    while (frames < out.length) {
      const whole = Math.floor(this.#pos);
      if (whole + 1 >= this.#size) break; // two samples are needed to interpolate
      const i = (this.#read + whole) % n;
      const a = ring[i];
      const b = ring[i + 1 === n ? 0 : i + 1];
      let sample = a + (b - a) * (this.#pos - whole);
      if (this.#fadeLength) sample *= --this.#fade / this.#fadeLength;
      out[frames++] = sample;
      this.#pos += this.#step;
      if (this.#fadeLength && this.#fade === 0) break;
    }
    this.#consume(Math.floor(this.#pos));
    if (this.#fadeLength && (this.#fade === 0 || frames < out.length)) {
      this.#clear();
    } else if (frames < out.length) {
      if (!this.#ending) this.underruns += 1;
      else this.#consume(this.#size); // the lone last sample of a finished reply
      this.#playing = false;
      this.#waited = 0;
    }
    return frames;
  }

  #consume(count, play = true) {
    if (count <= 0) return;
    this.#read = (this.#read + count) % this.#ring.length;
    this.#size -= count;
    this.#pos -= count;
    if (play) this.played += count;
  }

  #clear() {
    this.#read = this.#size = this.#pos = this.#waited = 0;
    this.#fade = this.#fadeLength = 0;
    this.#playing = false;
    this.#ending = false;
  }

  #reserve(extra) {
    let need = this.#size + extra;
    if (need > this.#maxSamples) {
      const drop = need - this.#maxSamples;
      this.#consume(Math.min(drop, this.#size), false);
      this.#pos = Math.max(0, this.#pos);
      this.dropped += drop;
      need = this.#size + extra;
    }
    if (need <= this.#ring.length) return;
    let length = this.#ring.length;
    while (length < need) length *= 2;
    const bigger = new Float32Array(length);
    for (let k = 0; k < this.#size; k++) bigger[k] = this.#ring[(this.#read + k) % this.#ring.length];
    this.#ring = bigger;
    this.#read = 0;
  }
}

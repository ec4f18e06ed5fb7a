// Local voice detection on the (echo-cancelled) microphone, pure: imported by the capture
// worklet and by the node tests. It only decides when the person starts speaking over a
// reply (to stop playback at once); the model's own detection still ends their turn.

export const VAD_DEFAULTS = Object.freeze({ threshold: 0.03, attackMs: 40, hangoverMs: 400 });

/**
 * Feed Float32 blocks; push() returns "start" when the RMS has stayed above `threshold`
 * (0..1 of full scale) for `attackMs`, "end" after `hangoverMs` below it, else "".
 */
export class VoiceDetector {
  #rate;
  #threshold;
  #attack;
  #hangover;
  #loud = 0; // samples in a row above the threshold
  #quiet = 0; // samples in a row below it, while speaking
  speaking = false;

  constructor({ sampleRate, threshold, attackMs, hangoverMs } = {}) {
    this.#rate = sampleRate;
    this.#threshold = positive(threshold, VAD_DEFAULTS.threshold);
    this.#attack = (positive(attackMs, VAD_DEFAULTS.attackMs) * sampleRate) / 1000;
    this.#hangover = (positive(hangoverMs, VAD_DEFAULTS.hangoverMs) * sampleRate) / 1000;
  }

  push(block) {
    if (!block.length) return "";
    let energy = 0;
    for (const s of block) energy += s * s;
    const loud = Math.sqrt(energy / block.length) >= this.#threshold;
    if (!this.speaking) {
      this.#loud = loud ? this.#loud + block.length : 0;
      if (this.#loud < this.#attack) return "";
      this.speaking = true;
      this.#quiet = 0;
      return "start";
    }
    this.#quiet = loud ? 0 : this.#quiet + block.length;
    if (this.#quiet < this.#hangover) return "";
    this.speaking = false;
    this.#loud = 0;
    return "end";
  }
}

function positive(value, fallback) {
  const number = Number(value);
  return Number.isFinite(number) && number > 0 ? number : fallback;
}

/** The tuning from the page root's data-vad-threshold (0..1 RMS), data-vad-attack-ms and
 * data-vad-hangover-ms; data-vad-interrupts="false" turns the barge-in by voice off (a
 * speakerphone whose echo the browser cannot cancel). */
export function vadOptions(data) {
  return {
    threshold: Number(data.vadThreshold) || undefined,
    attackMs: Number(data.vadAttackMs) || undefined,
    hangoverMs: Number(data.vadHangoverMs) || undefined,
    interrupts: data.vadInterrupts !== "false",
  };
}

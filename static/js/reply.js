// How much of the model's reply the person heard: audio received and played, and its words.
// Pure (node-tested).

/**
 * What the page knows of the reply being played: the audio received (ms of 24 kHz PCM16)
 * and its words, to tell how much of it the person heard when they stop it.
 */
export class ReplyTracker {
  open = false; // still arriving: audio or words came since the last turn.complete
  startedAt = 0; // the player's playedMs when this reply's audio started
  #receivedMs = 0;
  #text = "";
  #done = true; // the next audio or words start a new reply (this one may still be playing)

  audio(bytes, playedMs) {
    this.#begin();
    if (!this.#receivedMs) this.startedAt = playedMs;
    this.#receivedMs += bytes / 48; // 24 kHz × 2 bytes per ms
  }

  words(text, final) {
    this.#begin();
    this.#text = final ? text : this.#text + text;
  }

  complete() {
    this.open = false;
    this.#done = true;
  }

  #begin() {
    if (this.#done) {
      this.#receivedMs = 0;
      this.#text = "";
      this.#done = false;
    }
    this.open = true;
  }

  /** The words heard once `playedMs` (the player's total) has played: the reply's words in
   * proportion to the audio played, cut back to a whole word. */
  heard(playedMs) {
    const text = this.#text;
    if (!this.#receivedMs) return text;
    const share = Math.min(1, Math.max(0, (playedMs - this.startedAt) / this.#receivedMs));
    if (share >= 1) return text;
    const cut = text.slice(0, Math.round(text.length * share));
    const end = cut.lastIndexOf(" ");
    return (end > 0 && !/\s/.test(text[cut.length] ?? " ") ? cut.slice(0, end) : cut).trim();
  }
}

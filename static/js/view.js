// The page chrome around the conversation: data-state, the status line (with what the model
// and the person are doing: data-thinking, data-waiting, data-user-speaking), the notice, the
// Retry button, the record link, the talk and mute buttons, the level meter, player figures.
import { LIVE_STATES, statusText } from "./state.js";
import { setLabel, setPressed, show } from "./ui.js";

const NIL_UUID = "00000000-0000-0000-0000-000000000000";
const IDLE_ACTIVITY = Object.freeze({ thinking: false, waiting: false, hearing: false });
const ATTRIBUTES = { thinking: "thinking", waiting: "waiting", hearing: "userSpeaking" };

export class TalkView {
  #ui;
  #detail = "";
  #muted = false;
  #holding = false; // a typed message waits for the connection
  #state = "idle";
  #activity = IDLE_ACTIVITY;

  constructor(ui) {
    this.#ui = ui;
  }

  /** The reason shown with the error and reconnecting states. */
  set detail(text) {
    this.#detail = text || "";
  }

  render(state) {
    const { root, status, retry } = this.#ui;
    this.#state = state;
    root.dataset.state = state;
    if (!LIVE_STATES.includes(state)) this.#setActivity(IDLE_ACTIVITY);
    let detail = state === "error" || state === "reconnecting" ? this.#detail : "";
    if (state === "reconnecting" && this.#holding) detail += " Your message will be sent when it is back.";
    status.textContent = statusText(state, detail, { ...this.#activity, muted: this.#muted });
    if (state !== "error") show(retry, false);
  }

  /** What the model or the person is doing: {thinking, waiting, hearing} (merged). */
  activity(facts) {
    const next = { ...this.#activity, ...facts };
    if (Object.keys(next).every((key) => next[key] === this.#activity[key])) return;
    this.#setActivity(next);
    this.render(this.#state);
  }

  #setActivity(activity) {
    this.#activity = activity;
    for (const [key, name] of Object.entries(ATTRIBUTES)) {
      if (activity[key]) this.#ui.root.dataset[name] = "true";
      else delete this.#ui.root.dataset[name];
    }
  }

  /** Typed text is waiting for the connection (the reconnecting status says it will go). */
  holding(waiting) {
    if (this.#holding === Boolean(waiting)) return;
    this.#holding = Boolean(waiting);
    this.render(this.#state);
  }

  offerRetry(visible) {
    show(this.#ui.retry, visible);
  }

  notice(text) {
    this.#ui.notice.textContent = text || "";
    show(this.#ui.notice, Boolean(text));
  }

  microphone(active, muted) {
    const { talk, mute } = this.#ui;
    this.#muted = active && muted;
    setLabel(talk, active ? "Stop" : "Talk");
    talk.classList.toggle("is-active", active);
    mute.disabled = !active;
    setPressed(mute, this.#muted, this.#muted ? "Unmute" : "Mute");
    if (!active || muted) this.level(0);
  }

  level(value) {
    this.#ui.meter.style.setProperty("--level", value.toFixed(3));
  }

  /** The conversation's id is known: link to its record. Returns true if it changed. */
  conversation(id) {
    const { root, recordLink } = this.#ui;
    if ((root.dataset.conversation || "") === (id || "")) return false;
    root.dataset.conversation = id || "";
    if (id) recordLink.href = root.dataset.recordUrl.replace(NIL_UUID, id);
    show(recordLink, Boolean(id));
    return true;
  }

  player({ playedMs, bufferedMs, underruns }) {
    Object.assign(this.#ui.root.dataset, { playedMs, bufferedMs, underruns });
  }

  /** Playback stopped: flush() → the audio thread's ack (data-flush-ms), the person's
   * action → that ack (data-interrupt-ms), and when (data-flushed-at, performance.now()). */
  flushed({ ms, sinceMs }) {
    const data = this.#ui.root.dataset;
    Object.assign(data, { flushMs: Math.round(ms), interruptMs: Math.round(sinceMs), flushedAt: Math.round(performance.now()) });
  }

  /** The player's output level (0..1), on the output meter. */
  outputLevel(value) {
    this.#ui.outputMeter?.style.setProperty("--level", value.toFixed(3));
  }
}

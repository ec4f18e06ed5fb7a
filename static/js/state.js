// The page state (SPEC section 9 `data-state`), derived from a few facts so that it can never
// contradict them: idle → connecting → ready/listening → speaking ⇄ listening; reconnecting;
// error. Pure apart from the optional `onChange` callback.

export const States = Object.freeze([
  "idle",
  "connecting",
  "ready",
  "listening",
  "speaking",
  "reconnecting",
  "error",
]);

/**
 * link: "idle" | "connecting" | "ready" | "reconnecting" | "error" (the socket and session);
 * mic: capturing and not muted; speech: the person is speaking (local voice detection);
 * playing: model audio is coming out of the speaker; replying: a model turn is streaming;
 * spoken: replies are spoken (audio modality); ptt: push-to-talk, where the person talks
 * only while `holding` the button. "speaking" means the model is heard: its
 * audio plays, or, with written replies, its words stream in. The person speaking (not
 * muted) is "listening", whatever the model does.
 */
export function deriveState(facts) {
  const { link, mic = false, speech = false, playing = false, replying = false, spoken = false } = facts;
  if (link !== "ready") return link;
  const open = mic && (!facts.ptt || facts.holding); // what the person says goes to the model
  if (open && (speech || facts.holding)) return "listening";
  if (playing || (replying && !spoken)) return "speaking";
  return open ? "listening" : "ready";
}

export class PageState {
  #facts = { link: "idle", mic: false, speech: false, playing: false, replying: false, spoken: false, ptt: false, holding: false };
  #state = "idle";
  #onChange;

  constructor(onChange = () => {}) {
    this.#onChange = onChange;
  }

  get state() {
    return this.#state;
  }

  get link() {
    return this.#facts.link;
  }

  /** Merge some facts; calls onChange(state, previous) when the derived state changes. */
  update(facts) {
    this.#facts = { ...this.#facts, ...facts };
    const next = deriveState(this.#facts);
    if (next === this.#state) return;
    const previous = this.#state;
    this.#state = next;
    this.#onChange(next, previous);
  }
}

const LABELS = {
  idle: "Tap Talk or type a message",
  connecting: "Connecting…",
  ready: "Ready",
  listening: "Listening",
  speaking: "Pastra is speaking",
  reconnecting: "Reconnecting…",
  error: "Error",
};

// The states in which the model's and the person's activity shows in the status line.
export const LIVE_STATES = Object.freeze(["ready", "listening", "speaking"]);

/**
 * The human-readable status line for a state (errors carry their own reason). In a live
 * state, activity refines it: {thinking, waiting, hearing, muted} (first that holds wins).
 */
export function statusText(state, detail = "", activity = {}) {
  if (detail) return `${LABELS[state] ?? state}: ${detail}`;
  if (LIVE_STATES.includes(state)) {
    if (activity.thinking) return "Thinking…";
    if (activity.waiting) return "Waiting for you";
    if (activity.hearing) return "Hearing you…";
    if (activity.muted && state === "ready") return "Muted";
    if (activity.muted && state === "speaking") return "Pastra is speaking (you are muted)";
  }
  return LABELS[state] ?? state;
}

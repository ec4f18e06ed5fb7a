// Push-to-talk: hold the button (or the space bar) to talk. While held the microphone's
// audio goes to the model between `activity.start` and `activity.end` (the Live API's manual
// activity signals; the session runs with automatic activity detection off); released, the
// model answers and nothing is sent until the next press. bindFloor also lets the person's
// voice stop a reply (local detection) when push-to-talk is not in use.
import { mediaErrorMessage } from "./errors.js";
import { Client } from "./protocol.js";
import { setPressed } from "./ui.js";

const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);

/** parts: PushToTalk's, and vad ({interrupts}). Returns the PushToTalk (or null). */
export function bindFloor(button, parts) {
  // The person starts speaking over the reply: it stops at once, here, not a round trip
  // later (the model's own detection then takes their turn).
  parts.voice.addEventListener("speech", ({ detail }) => {
    if (detail.state === "start" && parts.vad.interrupts && !parts.manual()) {
      parts.conversation.interrupt("voice", detail.at);
    }
  });
  return button ? new PushToTalk(button, parts) : null;
}

export class PushToTalk {
  #button;
  #parts;
  holding = false;

  /** parts: {socket, state, view, voice, conversation, manual(on?) (push-to-talk mode: set
   * or read), connect()}. */
  constructor(button, parts) {
    this.#button = button;
    this.#parts = parts;
    button.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      button.setPointerCapture?.(event.pointerId);
      this.#down(event.timeStamp);
    });
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      button.addEventListener(type, () => this.#up());
    }
    button.addEventListener("contextmenu", (event) => event.preventDefault()); // long press
    document.addEventListener("keydown", (event) => {
      if (!this.#spaceBar(event)) return;
      event.preventDefault();
      if (!event.repeat) this.#down(event.timeStamp);
    });
    document.addEventListener("keyup", (event) => this.#spaceBar(event) && this.#up());
    addEventListener("blur", () => this.#up()); // a key released in another window
  }

  // The space bar talks unless the person is typing or on another control.
  #spaceBar(event) {
    if (event.code !== "Space" || event.ctrlKey || event.metaKey || event.altKey) return false;
    const target = event.target;
    if (TYPING.has(target?.tagName) || target?.isContentEditable) return false;
    return !(target?.closest?.("button, a, dialog") && target !== this.#button);
  }

  async #down(since) {
    if (this.holding) return;
    this.holding = true;
    this.#show();
    const { socket, state, view, voice, conversation, manual, connect } = this.#parts;
    voice.unlock();
    conversation.interrupt("voice", since); // talking over the reply stops it
    manual(true);
    connect();
    state.update({ holding: true });
    socket.send({ type: Client.ACTIVITY_START });
    if (voice.micActive) return;
    try {
      await voice.startMic();
    } catch (error) {
      if (error.name !== "StoppedError") view.notice(mediaErrorMessage(error, "microphone"));
    }
  }

  #up() {
    if (!this.holding) return;
    this.holding = false;
    this.#show();
    this.#parts.state.update({ holding: false });
    this.#parts.socket.send({ type: Client.ACTIVITY_END });
  }

  #show() {
    setPressed(this.#button, this.holding, this.holding ? "Talking…" : "Hold to talk");
    this.#button.classList.toggle("is-active", this.holding);
  }
}

// The assistant page: one live session (socket, voice, camera or screen), driven by the
// controls. Sessions start lazily (the first tap or message): an open tab costs no live time.
import { bindConversation } from "./conversation.js";
import { mediaErrorMessage } from "./errors.js";
import { bindLink } from "./link.js";
import { LiveSocket, MAX_BUFFERED_BYTES } from "./live-socket.js";
import { Client } from "./protocol.js";
import { bindFloor } from "./ptt.js";
import { retryWhenBack } from "./reconnect.js";
import { PageState } from "./state.js";
import { vadOptions } from "./vad.js";
import { ToolActivity } from "./tools.js";
import { Transcript } from "./transcript.js";
import { TalkView } from "./view.js";
import { Vision } from "./vision.js";
import { Voice } from "./voice.js";

const UUID = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i;

export class App {
  #settings;
  #view;
  #state;
  #socket;
  #voice;
  #vision;
  #transcript;
  #conversation;
  #ptt;
  #manual = false; // push-to-talk: the page's activity signals, not the model's detection
  #started = "";

  constructor(ui, config, settings) {
    this.#settings = settings;
    const view = (this.#view = new TalkView(ui));
    const state = (this.#state = new PageState((next) => view.render(next)));
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = (this.#socket = new LiveSocket(`${scheme}://${location.host}${config.wsPath}`));
    const vad = vadOptions(ui.root.dataset);
    const sendAudio = (pcm) => (!this.#manual || this.#ptt?.holding) && socket.sendAudio(pcm); // PTT: held only
    this.#voice = new Voice({ view, state, vad, sendAudio });
    this.#vision = new Vision(ui, (frame) => this.#sendVideo(frame));
    this.#transcript = new Transcript(ui.transcript, ui.stage);
    const parts = { socket, state, transcript: this.#transcript };
    const tools = new ToolActivity(ui.toolsPanel);
    this.#conversation = bindConversation({ ...parts, view, player: this.#voice.player, tools, root: ui.root });
    const mediaActive = () => this.#voice.micActive || this.#vision.active;
    const resend = (text, id) => this.connect() ?? socket.send({ type: Client.TEXT, text, id });
    bindLink({ ...parts, view, release: () => this.#release(), mediaActive, resend });
    this.#vision.addEventListener("problem", ({ detail }) => view.notice(detail));
    this.#vision.quality(settings.values.resolution);
    retryWhenBack(socket, { probeUrl: config.healthUrl });
    const floor = { socket, state, view, voice: this.#voice, conversation: this.#conversation, vad };
    this.#ptt = bindFloor(ui.ptt, { ...floor, manual: (on) => this.#mode(on), connect: () => this.connect() });
    view.render("idle");
  }

  /** Open a session unless one is open or on its way. Call from a user gesture. */
  connect() {
    this.#voice.unlock();
    if (this.#socket.active) return;
    const options = this.#startOptions();
    this.#started = JSON.stringify(options);
    this.#transcript.spokenReplies = options.modality === "audio";
    this.#view.notice("");
    this.#state.update({ link: "connecting", spoken: options.modality === "audio" });
    this.#socket.start(options);
  }

  #startOptions() {
    const options = this.#settings.startOptions();
    return this.#manual ? { ...options, activity: "manual" } : options;
  }

  /** Push-to-talk or not (set, or read): a session restarts in the other mode (same talk). */
  #mode(manual) {
    if (manual === undefined) return this.#manual;
    if (this.#manual === manual) return;
    this.#manual = manual;
    this.#state.update({ ptt: manual });
    if (this.#socket.active) this.#restart();
  }

  #restart() {
    this.#voice.player.flush();
    this.#socket.stop({ quiet: true });
    this.#state.update({ replying: false });
    this.connect();
  }

  async toggleTalk() {
    if (this.#voice.micActive) return this.stop();
    this.#mode(false);
    const wasLive = this.#socket.active;
    this.connect();
    try {
      await this.#voice.startMic();
      this.#view.notice("");
    } catch (error) {
      if (error.name === "StoppedError") return;
      if (!wasLive) this.stop(); // a session for nothing would only burn live time
      this.#view.notice(mediaErrorMessage(error, "microphone"));
    }
  }

  /** End the session: microphone, camera or screen, playback and socket. */
  stop() {
    this.#release();
    this.#socket.stop();
    this.#state.update({ link: "idle" });
  }

  /** A typed message; `since` is the time of the person's action (it stops a reply). */
  sendText(text, since = performance.now()) {
    const message = text.trim();
    if (!message) return false;
    this.connect();
    this.#conversation.interrupt("text", since);
    this.#view.activity({ waiting: false });
    this.#transcript.addTyped(message, this.#socket.send({ type: Client.TEXT, text: message }).id);
    if (!this.#socket.isOpen) this.#view.holding(true);
    return true;
  }

  toggleMute = () => this.#voice.toggleMute() && this.#socket.send({ type: Client.MIC_STOPPED });

  /** The camera, screen and flip buttons: "camera" | "screen" | "flip". */
  video(action) {
    return this.#vision.act(action, () => this.connect());
  }

  /** Stop the model's reply at once (the interrupt button; `since`: the tap's time). */
  interrupt(since = performance.now()) {
    this.#conversation.interrupt("button", since);
  }

  /** Settings changed: a running session restarts with them, in the same conversation. */
  applySettings() {
    this.#vision.quality(this.#settings.values.resolution);
    if (!this.#socket.active || JSON.stringify(this.#startOptions()) === this.#started) return;
    this.#restart();
  }

  /** Go on with an earlier conversation (the record page's "Continue" link). */
  resume(id) {
    if (!UUID.test(id) || this.#socket.active) return;
    this.#socket.conversation = id.toLowerCase();
    this.#view.conversation(this.#socket.conversation);
    this.#transcript.addMarker("Continuing an earlier conversation");
  }

  /** The first tap anywhere unlocks audio output (iOS plays nothing before a gesture). */
  unlockAudio = () => this.#voice.unlock();

  newConversation() {
    this.stop();
    this.#socket.conversation = "";
    this.#view.conversation("");
    this.#transcript.addMarker("New conversation");
  }

  #release() {
    this.#voice.release();
    this.#vision.stop();
    this.#transcript.thinking(""); // nothing is on its way any more
    this.#state.update({ replying: false });
  }

  #sendVideo(frame) {
    const socket = this.#socket;
    const ok = socket.isOpen && socket.bufferedAmount <= MAX_BUFFERED_BYTES / 4;
    return ok && Boolean(socket.send({ type: Client.VIDEO, ...frame }));
  }
}

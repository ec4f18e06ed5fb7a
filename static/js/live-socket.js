// One WebSocket to /ws/live/, as an EventTarget: binary frames are "audio" events, JSON
// events are dispatched by their `type`. Unexpected closes (and unanswered handshakes)
// reconnect with backoff and jitter and send the conversation id in `start` (the server
// resumes it) while the page is open (retryNow() skips the wait). Events besides the server's:
// "open", "reconnecting" {attempt, delay, message, pending}, "closed" {code, retry, message}, "unsent".
import { Heartbeat } from "./heartbeat.js";
import { Outbox, Preroll } from "./outbox.js";
import { Client, CloseCode, Server, TransportCode, backoffDelay, closeInfo } from "./protocol.js";

const OPEN = 1;
const MAX_PREROLL_BYTES = 48000; // 1.5 s of 16 kHz PCM16 kept while connecting
export const MAX_BUFFERED_BYTES = 256 * 1024;

export class LiveSocket extends EventTarget {
  #url;
  #WS;
  #timers;
  #random;
  #heartbeat;
  #ws = null;
  #options = null;
  #attempt = 0;
  #retryTimer = null;
  #error = null;
  #outbox = new Outbox();
  #preroll = new Preroll(MAX_PREROLL_BYTES);
  conversation = "";

  constructor(url, { WebSocketImpl = globalThis.WebSocket, timers = globalThis, random = Math.random } = {}) {
    super();
    this.#url = url;
    this.#WS = WebSocketImpl;
    this.#timers = timers;
    this.#random = random;
    this.#heartbeat = new Heartbeat(timers);
  }

  get isOpen() {
    return this.#ws?.readyState === OPEN;
  }

  /** True from start() to the final close (connecting, open, or waiting to reconnect). */
  get active() {
    return this.#ws !== null || this.#retryTimer !== null;
  }

  get bufferedAmount() {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** Open a session: `options` ({modality, voice, persona, model}) go into every `start`. */
  start(options) {
    this.#options = { ...options };
    this.#attempt = 0;
    this.#connect();
  }

  /** Reconnect at once if a reconnect is pending (e.g. the browser came back online). */
  retryNow() {
    if (this.#retryTimer === null) return;
    this.#timers.clearTimeout(this.#retryTimer);
    this.#connect();
  }

  /** End on purpose (the server closes 1000); `quiet`: a restart follows, no "closed". */
  stop({ quiet = false } = {}) {
    this.#timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#preroll.clear();
    if (!quiet) this.#unsent(); // a restart (quiet) sends them in the new session
    const ws = this.#ws;
    if (!ws) return;
    if (ws.readyState === OPEN) ws.send(JSON.stringify({ type: Client.STOP }));
    this.#closed(ws, CloseCode.NORMAL, "", quiet ? "quiet" : "stopped");
    if (ws.readyState === OPEN) this.#timers.setTimeout(() => ws.close(), 3000);
    else ws.close();
  }

  /** Send JSON, or hold it in the outbox until after the next `start`; returns it (with id). */
  send(message) {
    const sent = this.#outbox.add(message);
    if (this.isOpen) this.#flush(this.#ws);
    return sent;
  }

  /** Send one PCM16 chunk; dropped when the socket is backed up (stale audio is useless). */
  sendAudio(int16) {
    const bytes = int16.buffer.byteLength === int16.byteLength ? int16.buffer : int16.slice().buffer;
    if (this.isOpen) {
      if (this.#ws.bufferedAmount > MAX_BUFFERED_BYTES) return false;
      this.#ws.send(bytes);
      return true;
    }
    this.#preroll.push(bytes);
    return false;
  }

  #connect() {
    this.#retryTimer = null;
    this.#error = null;
    const ws = new this.#WS(this.#url);
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    ws.addEventListener("open", () => this.#opened(ws));
    ws.addEventListener("message", ({ data }) => this.#message(ws, data));
    ws.addEventListener("close", ({ code, reason }) => this.#closed(ws, code, reason));
    this.#heartbeat.connecting(() => this.#closed(ws, TransportCode.ABNORMAL, "No answer from the server.") ?? ws.close());
  }

  #opened(ws) {
    if (ws !== this.#ws) return;
    const start = { type: Client.START, ...this.#options };
    if (this.conversation) start.conversation = this.conversation;
    ws.send(JSON.stringify(start));
    this.#flush(ws);
    for (const bytes of this.#preroll.take()) ws.send(bytes);
    const dead = () => this.#closed(ws, TransportCode.ABNORMAL, "No answer from the server.") ?? ws.close();
    this.#heartbeat.start(() => ws.send(JSON.stringify({ type: Client.PING })), dead);
    this.#emit("open", {});
  }

  #message(ws, data) {
    if (ws !== this.#ws) return;
    this.#heartbeat.alive();
    if (typeof data !== "string") return this.#emit("audio", data);
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof event?.type !== "string") return;
    if (event.type === Server.SESSION) {
      if (event.conversation) this.conversation = event.conversation;
      if (event.state === "ready") this.#attempt = 0;
    } else if (event.type === Server.ERROR) {
      this.#error = event;
    } else if (event.type === Server.RECEIVED) {
      this.#outbox.received(event.id);
    }
    this.#emit(event.type, event);
  }

  #closed(ws, code, reason, by = "") {
    if (ws !== this.#ws) return;
    this.#ws = null;
    this.#heartbeat.stop();
    const error = this.#error;
    if (by === "quiet") return;
    if (by === "stopped") return this.#emit("closed", { code, retry: "idle", message: "" });
    const info = closeInfo(error?.code ?? code, error?.message || reason);
    if (info.retry === "auto") {
      const { message } = closeInfo(error?.code ?? code); // not the server's "Reconnect to…"
      const delay = backoffDelay(this.#attempt++, this.#random);
      this.#retryTimer = this.#timers.setTimeout(() => this.#connect(), delay);
      return this.#emit("reconnecting", { attempt: this.#attempt, delay, message, pending: this.#outbox.pending });
    }
    this.#unsent();
    this.#emit("closed", { code, ...info });
  }

  #flush(ws) {
    for (const message of this.#outbox.take(ws)) ws.send(JSON.stringify(message));
  }

  #unsent() {
    const messages = this.#outbox.clear();
    if (messages.length) this.#emit("unsent", { messages });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

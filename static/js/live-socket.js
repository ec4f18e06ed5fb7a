// One WebSocket to /ws/live/, as an EventTarget: binary frames are "audio" events, JSON
// events are dispatched by their `type`. Unexpected closes reconnect with backoff and jitter
// and send the conversation id in `start`, so the server resumes the same conversation.
// Events besides the server's: "open", "reconnecting" {attempt, delay, message},
// "closed" {code, retry: "idle" | "manual" | "none", message}.
import { Heartbeat } from "./heartbeat.js";
import { Client, CloseCode, MAX_RECONNECT_ATTEMPTS, Server, TransportCode, backoffDelay, closeInfo } from "./protocol.js";

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
  #outbox = [];
  #preroll = [];
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

  /** End on purpose: `stop` (the server closes with 1000); "closed" fires at once unless
   * `quiet` (a restart with new options follows). */
  stop({ quiet = false } = {}) {
    this.#timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#outbox = [];
    this.#preroll = [];
    const ws = this.#ws;
    if (!ws) return;
    if (ws.readyState === OPEN) ws.send(JSON.stringify({ type: Client.STOP }));
    this.#closed(ws, CloseCode.NORMAL, "", quiet ? "quiet" : "stopped");
    if (ws.readyState === OPEN) this.#timers.setTimeout(() => ws.close(), 3000);
    else ws.close();
  }

  /** Send a JSON message; while not open it waits in an outbox, sent after the next `start`. */
  send(message) {
    if (this.isOpen) this.#ws.send(JSON.stringify(message));
    else this.#outbox.push(message);
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
    let total = this.#preroll.reduce((sum, b) => sum + b.byteLength, 0);
    while (total > MAX_PREROLL_BYTES) total -= this.#preroll.shift().byteLength;
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
  }

  #opened(ws) {
    if (ws !== this.#ws) return;
    const start = { type: Client.START, ...this.#options };
    if (this.conversation) start.conversation = this.conversation;
    ws.send(JSON.stringify(start));
    for (const message of this.#outbox.splice(0)) ws.send(JSON.stringify(message));
    for (const bytes of this.#preroll.splice(0)) ws.send(bytes);
    const dead = () => {
      this.#closed(ws, TransportCode.ABNORMAL, "No answer from the server.");
      ws.close();
    };
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
    if (info.retry === "auto" && this.#attempt < MAX_RECONNECT_ATTEMPTS) {
      const delay = backoffDelay(this.#attempt++, this.#random);
      this.#retryTimer = this.#timers.setTimeout(() => this.#connect(), delay);
      return this.#emit("reconnecting", { attempt: this.#attempt, delay, message: info.message });
    }
    if (info.retry === "auto") info.retry = "manual";
    this.#outbox = [];
    this.#emit("closed", { code, ...info });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import { CONNECT_TIMEOUT_MS } from "../../static/js/heartbeat.js";
import { LiveSocket, MAX_BUFFERED_BYTES } from "../../static/js/live-socket.js";
import { CloseCode, TransportCode } from "../../static/js/protocol.js";

class FakeWebSocket extends EventTarget {
  static all = [];
  readyState = 0;
  bufferedAmount = 0;
  sent = [];
  binaryType = "blob";

  constructor(url) {
    super();
    this.url = url;
    FakeWebSocket.all.push(this);
  }

  send(data) {
    this.sent.push(data);
  }

  close() {
    if (this.readyState === 3) return;
    this.serverClose(1005, "");
  }

  // --- test side ---
  open() {
    this.readyState = 1;
    this.dispatchEvent(new Event("open"));
  }

  receive(data) {
    const event = new Event("message");
    event.data = typeof data === "string" || data instanceof ArrayBuffer ? data : JSON.stringify(data);
    this.dispatchEvent(event);
  }

  serverClose(code, reason = "") {
    this.readyState = 3;
    const event = new Event("close");
    Object.assign(event, { code, reason });
    this.dispatchEvent(event);
  }

  json() {
    return this.sent.filter((d) => typeof d === "string").map((d) => JSON.parse(d));
  }
}

class FakeTimers {
  now = 0;
  #next = 1;
  #pending = new Map();
  setTimeout = (fn, ms) => this.#add(fn, ms, false);
  setInterval = (fn, ms) => this.#add(fn, ms, true);
  clearTimeout = (id) => this.#pending.delete(id);
  clearInterval = (id) => this.#pending.delete(id);

  #add(fn, ms, repeat) {
    const id = this.#next++;
    this.#pending.set(id, { fn, at: this.now + ms, ms, repeat });
    return id;
  }

  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.#pending.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at);
      if (!due.length) break;
      const [id, timer] = due[0];
      this.now = timer.at;
      if (timer.repeat) timer.at += timer.ms;
      else this.#pending.delete(id);
      timer.fn();
    }
    this.now = end;
  }
}

let timers;
let socket;
let events;

function latest() {
  return FakeWebSocket.all.at(-1);
}

beforeEach(() => {
  FakeWebSocket.all = [];
  timers = new FakeTimers();
  socket = new LiveSocket("ws://example.test/ws/live/", { WebSocketImpl: FakeWebSocket, timers, random: () => 0.5 });
  events = [];
  for (const type of ["open", "session", "transcript", "audio", "reconnecting", "closed", "error", "unsent"]) {
    socket.addEventListener(type, ({ detail }) => events.push([type, detail]));
  }
});

describe("LiveSocket", () => {
  test("sends `start` with the options on open, binary frames are audio", () => {
    socket.start({ modality: "audio", voice: "Puck" });
    const ws = latest();
    assert.equal(ws.binaryType, "arraybuffer");
    ws.open();
    assert.deepEqual(ws.json()[0], { type: "start", modality: "audio", voice: "Puck" });
    ws.receive({ type: "session", state: "ready", conversation: "c-1" });
    ws.receive(new ArrayBuffer(8));
    assert.equal(socket.conversation, "c-1");
    assert.deepEqual(events.map(([type]) => type), ["open", "session", "audio"]);
  });

  test("text sent before open waits in an outbox; audio keeps a short pre-roll", () => {
    socket.start({});
    socket.send({ type: "text", text: "hi" });
    for (let i = 0; i < 20; i++) socket.sendAudio(new Int16Array(1600)); // 2 s
    const ws = latest();
    ws.open();
    assert.deepEqual(ws.json().map((m) => m.type), ["start", "text"]);
    const audio = ws.sent.filter((d) => d instanceof ArrayBuffer);
    assert.equal(audio.length, 15, "at most 1.5 s of audio from before the socket opened");
  });

  test("an abnormal close reconnects with backoff and resumes the conversation", () => {
    socket.start({ modality: "text" });
    latest().open();
    latest().receive({ type: "session", state: "ready", conversation: "c-42" });
    latest().serverClose(TransportCode.ABNORMAL);
    assert.equal(events.at(-1)[0], "reconnecting");
    assert.equal(events.at(-1)[1].attempt, 1);
    timers.advance(0);
    assert.equal(FakeWebSocket.all.length, 2);
    latest().serverClose(TransportCode.ABNORMAL); // fails before opening
    assert.equal(events.at(-1)[1].delay, 300);
    timers.advance(299);
    assert.equal(FakeWebSocket.all.length, 2);
    timers.advance(1);
    assert.equal(FakeWebSocket.all.length, 3);
    latest().open();
    assert.deepEqual(latest().json()[0], { type: "start", modality: "text", conversation: "c-42" });
    latest().receive({ type: "session", state: "ready", conversation: "c-42", resumed: true });
    latest().serverClose(CloseCode.SERVICE_RESTART);
    assert.equal(events.at(-1)[1].attempt, 1, "a ready session resets the backoff");
  });

  test("never gives up: retries with capped, jittered backoff for as long as the page is open", () => {
    socket.start({});
    const delays = [];
    for (let i = 0; i < 40; i++) {
      latest().serverClose(TransportCode.ABNORMAL);
      const [type, detail] = events.at(-1);
      assert.equal(type, "reconnecting", `attempt ${i + 1}`);
      delays.push(detail.delay);
      timers.advance(10_000);
    }
    assert.equal(FakeWebSocket.all.length, 41);
    assert.ok(Math.max(...delays) <= 8000, "capped");
    assert.equal(socket.active, true);
    socket.retryNow(); // nothing pending: a no-op
    assert.equal(FakeWebSocket.all.length, 41);
  });

  test("the reconnecting message is the page's own, never the server's 'Reconnect to continue'", () => {
    socket.start({});
    latest().open();
    latest().receive({ type: "error", code: CloseCode.SERVICE_RESTART, message: "The server is restarting. Reconnect to continue." });
    latest().serverClose(CloseCode.SERVICE_RESTART, "The server is restarting. Reconnect to continue.");
    assert.deepEqual(events.at(-1), ["reconnecting", { attempt: 1, delay: 0, message: "The server is restarting.", pending: 0 }]);
  });

  test("typed text is kept until the server received it, and sent again after a reconnect", () => {
    socket.start({});
    const first = latest();
    first.open();
    const { id } = socket.send({ type: "text", text: "into the void" });
    assert.ok(id);
    socket.send({ type: "text", text: "second" });
    first.receive({ type: "received", id: first.json().find((m) => m.text === "second").id });
    first.serverClose(TransportCode.ABNORMAL); // the first never arrived
    assert.equal(events.at(-1)[1].pending, 1);
    timers.advance(0);
    latest().open();
    assert.deepEqual(latest().json().map((m) => [m.type, m.text, m.id]), [["start", undefined, undefined], ["text", "into the void", id]]);
    latest().receive({ type: "received", id });
    socket.stop();
    assert.ok(!events.some(([type]) => type === "unsent"));
  });

  test("text that could not be sent in the end is handed back as unsent", () => {
    socket.start({});
    const { id } = socket.send({ type: "text", text: "hello?" }); // not open yet
    latest().serverClose(CloseCode.UNAUTHENTICATED);
    const unsent = events.find(([type]) => type === "unsent");
    assert.deepEqual(unsent[1].messages, [{ type: "text", text: "hello?", id }]);
    assert.equal(events.at(-1)[0], "closed");
  });

  test("a message sent on an open socket is not sent twice", () => {
    socket.start({});
    latest().open();
    socket.send({ type: "text", text: "one" });
    socket.send({ type: "ping" });
    socket.send({ type: "text", text: "two" });
    assert.deepEqual(latest().json().map((m) => m.text ?? m.type), ["start", "one", "ping", "two"]);
  });

  test("an error event before the close gives the reason and the policy", () => {
    socket.start({});
    latest().open();
    latest().receive({ type: "error", code: CloseCode.DAILY_LIMIT, message: "Daily limit of 3600 s reached." });
    latest().serverClose(CloseCode.DAILY_LIMIT, "Daily limit");
    const [type, detail] = events.at(-1);
    assert.equal(type, "closed");
    assert.deepEqual(detail, { code: CloseCode.DAILY_LIMIT, retry: "none", message: "Daily limit of 3600 s reached." });
  });

  test("stop() asks the server to end, and the close does not reconnect", () => {
    socket.start({});
    const ws = latest();
    ws.open();
    socket.stop();
    assert.equal(ws.json().at(-1).type, "stop");
    ws.serverClose(CloseCode.NORMAL);
    assert.deepEqual(events.at(-1), ["closed", { code: 1000, retry: "idle", message: "" }]);
    timers.advance(60_000);
    assert.equal(FakeWebSocket.all.length, 1);
  });

  test("a server that stops answering pings is treated as a lost connection", () => {
    socket.start({});
    latest().open();
    timers.advance(20_000);
    assert.equal(latest().json().at(-1).type, "ping");
    timers.advance(10_000);
    assert.equal(events.at(-1)[0], "reconnecting");
  });

  test("a handshake that gets no answer is given up and tried again", () => {
    socket.start({});
    latest().open();
    latest().receive({ type: "session", state: "ready", conversation: "c-7" });
    latest().serverClose(TransportCode.ABNORMAL);
    timers.advance(0); // the retry goes into a link that swallows it: never opens, never closes
    const silent = latest();
    timers.advance(CONNECT_TIMEOUT_MS - 1);
    assert.equal(FakeWebSocket.all.length, 2, "still waiting for the handshake");
    timers.advance(1);
    assert.equal(silent.readyState, 3, "the silent attempt is closed");
    assert.equal(events.at(-1)[0], "reconnecting");
    timers.advance(300);
    assert.equal(FakeWebSocket.all.length, 3);
    latest().open();
    assert.equal(latest().json()[0].conversation, "c-7");
    timers.advance(CONNECT_TIMEOUT_MS * 3);
    assert.equal(FakeWebSocket.all.length, 3, "an open socket is not timed out");
  });

  test("idle timeout returns to idle quietly", () => {
    socket.start({});
    latest().open();
    latest().serverClose(CloseCode.IDLE, "");
    assert.equal(events.at(-1)[1].retry, "idle");
  });

  test("audio is dropped while the socket is backed up", () => {
    socket.start({});
    const ws = latest();
    ws.open();
    ws.bufferedAmount = MAX_BUFFERED_BYTES + 1;
    assert.equal(socket.sendAudio(new Int16Array(1600)), false);
    ws.bufferedAmount = 0;
    assert.equal(socket.sendAudio(new Int16Array(1600)), true);
  });
});

describe("LiveSocket restart", () => {
  test("a quiet stop lets a new start follow at once, in the same conversation", () => {
    socket.start({ voice: "Puck" });
    const first = latest();
    first.open();
    first.receive({ type: "session", state: "ready", conversation: "c-7" });
    socket.stop({ quiet: true });
    assert.equal(first.json().at(-1).type, "stop");
    assert.equal(socket.active, false);
    socket.start({ voice: "Kore" });
    latest().open();
    assert.deepEqual(latest().json()[0], { type: "start", voice: "Kore", conversation: "c-7" });
    first.serverClose(CloseCode.NORMAL);
    assert.ok(!events.some(([type]) => type === "closed"), "no closed event for a restart");
  });
});

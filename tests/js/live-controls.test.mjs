import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ReplyTracker } from "../../static/js/reply.js";
import { deriveState, statusText } from "../../static/js/state.js";
import { VAD_DEFAULTS, VoiceDetector, vadOptions } from "../../static/js/vad.js";
import { Outbox } from "../../static/js/outbox.js";

const RATE = 48000;
const block = (level, n = 128) => new Float32Array(n).fill(level);

/** Feed `ms` of a constant level in 128-sample blocks; returns the events with their time. */
function feed(vad, level, ms, start = 0) {
  const events = [];
  const blocks = Math.round((ms * RATE) / 1000 / 128);
  for (let i = 0; i < blocks; i++) {
    const event = vad.push(block(level));
    if (event) events.push([event, start + Math.round(((i + 1) * 128 * 1000) / RATE)]);
  }
  return events;
}

describe("local voice detection", () => {
  test("speech starts after the attack time above the threshold, ends after the hangover", () => {
    const vad = new VoiceDetector({ sampleRate: RATE });
    assert.deepEqual(feed(vad, 0.001, 500), [], "room noise is not speech");
    const start = feed(vad, 0.2, 200, 500);
    assert.equal(start.length, 1);
    assert.equal(start[0][0], "start");
    assert.ok(start[0][1] - 500 <= VAD_DEFAULTS.attackMs + 3, `detected within the attack time (${start[0][1] - 500} ms)`);
    const end = feed(vad, 0, 1000, 700);
    assert.equal(end.length, 1);
    assert.equal(end[0][0], "end");
    assert.ok(Math.abs(end[0][1] - 700 - VAD_DEFAULTS.hangoverMs) <= 3);
  });

  test("a short click is not speech, and short pauses do not end it", () => {
    const vad = new VoiceDetector({ sampleRate: RATE });
    assert.deepEqual(feed(vad, 0.5, 10), [], "10 ms is under the attack time");
    feed(vad, 0, 100);
    assert.equal(feed(vad, 0.2, 100)[0][0], "start");
    assert.deepEqual(feed(vad, 0, 200), [], "a 200 ms pause is within the hangover");
    assert.deepEqual(feed(vad, 0.2, 100), []);
  });

  test("the threshold and hangover are tunable from the page root's data attributes", () => {
    const options = vadOptions({ vadThreshold: "0.3", vadHangoverMs: "100", vadInterrupts: "false" });
    assert.deepEqual(options, { threshold: 0.3, attackMs: undefined, hangoverMs: 100, interrupts: false });
    const vad = new VoiceDetector({ sampleRate: RATE, ...options });
    assert.deepEqual(feed(vad, 0.2, 300), [], "under a higher threshold");
    assert.equal(feed(vad, 0.5, 100)[0][0], "start");
    assert.ok(Math.abs(feed(vad, 0, 300)[0][1] - 100) <= 3, "the shorter hangover");
    assert.equal(vadOptions({}).interrupts, true);
  });
});

describe("what the person heard of a reply", () => {
  test("the words in proportion to the audio played, cut back to a whole word", () => {
    const reply = new ReplyTracker();
    reply.audio(48_000, 5000); // 1 s received while the player had played 5 s before it
    reply.words("one two three four", false);
    reply.audio(48_000, 5100);
    assert.equal(reply.open, true);
    assert.equal(reply.heard(5000), "");
    assert.equal(reply.heard(6000), "one two"); // half of 2 s: "one two th|ree" → "one two"
    assert.equal(reply.heard(7500), "one two three four");
    reply.complete();
    assert.equal(reply.open, false);
    assert.equal(reply.heard(6000), "one two", "still known while the whole reply plays out");
    reply.words("next", false); // a new reply starts afresh
    assert.equal(reply.heard(9000), "next");
  });
});

describe("the page state follows what is true", () => {
  test("Speaking only while the model is heard; Listening while the person speaks", () => {
    const ready = { link: "ready", spoken: true };
    assert.equal(deriveState({ ...ready, replying: true }), "ready", "words arriving, nothing audible yet");
    assert.equal(deriveState({ ...ready, replying: true, playing: true }), "speaking");
    assert.equal(deriveState({ ...ready, mic: true, speech: true, playing: true }), "listening", "the person talks");
    assert.equal(deriveState({ ...ready, mic: false, speech: true, playing: true }), "speaking", "muted");
    assert.equal(deriveState({ link: "ready", replying: true }), "speaking", "written replies");
  });

  test("push-to-talk: listening only while the button is held", () => {
    const ptt = { link: "ready", mic: true, ptt: true, spoken: true };
    assert.equal(deriveState(ptt), "ready");
    assert.equal(deriveState({ ...ptt, holding: true }), "listening");
    assert.equal(deriveState({ ...ptt, holding: true, playing: true }), "listening");
  });

  test("muted while the model speaks says both", () => {
    assert.equal(statusText("speaking", "", { muted: true }), "Pastra is speaking (you are muted)");
    assert.equal(statusText("speaking"), "Pastra is speaking");
    assert.equal(statusText("ready", "", { muted: true }), "Muted");
  });
});

describe("outbox", () => {
  test("control messages go once; text stays until received, and goes once per connection", () => {
    const outbox = new Outbox();
    const text = outbox.add({ type: "text", text: "hi" });
    outbox.add({ type: "activity.start" });
    const a = {};
    const b = {};
    assert.deepEqual(outbox.take(a).map((m) => m.type), ["text", "activity.start"]);
    assert.deepEqual(outbox.take(a), [], "nothing twice on one connection");
    assert.equal(outbox.pending, 1);
    assert.deepEqual(outbox.take(b), [text], "the text again on the next one");
    outbox.received(text.id);
    assert.deepEqual(outbox.clear(), []);
  });
});

describe("reconnecting at once when it would work", async () => {
  const windowEvents = new EventTarget();
  globalThis.addEventListener ??= windowEvents.addEventListener.bind(windowEvents);
  globalThis.dispatchEvent ??= windowEvents.dispatchEvent.bind(windowEvents);
  globalThis.document ??= Object.assign(new EventTarget(), { visibilityState: "visible" });
  const { retryWhenBack, PROBE_MS } = await import("../../static/js/reconnect.js");

  function setup(answers) {
    const socket = new EventTarget();
    socket.retries = 0;
    socket.retryNow = () => socket.retries++;
    const intervals = [];
    const timers = { setInterval: (fn) => intervals.push(fn) && intervals.length, clearInterval: (id) => id && (intervals[id - 1] = null) };
    socket.stopped = 0;
    socket.stop = () => socket.stopped++;
    const fetchImpl = async (url, init) => {
      const answer = answers.shift();
      if (answer === "down") throw new TypeError("Failed to fetch");
      if (answer === "login") return { ok: false, status: 0, type: "opaqueredirect", init };
      return { ok: answer === "up", status: answer === "up" ? 200 : 502, type: "basic", url };
    };
    retryWhenBack(socket, { fetchImpl, timers });
    const tick = async () => {
      for (const fn of intervals) if (fn) await fn();
    };
    const reconnecting = (delay) => socket.dispatchEvent(new CustomEvent("reconnecting", { detail: { delay } }));
    return { socket, tick, reconnecting, intervals };
  }

  test("the server answering again after it did not: at once", async () => {
    const { socket, tick, reconnecting } = setup(["down", "down", "up"]);
    reconnecting(PROBE_MS * 2);
    await tick();
    await tick();
    assert.equal(socket.retries, 0);
    await tick();
    assert.equal(socket.retries, 1);
  });

  test("a server that answers all along is left to the backoff (no retry storm)", async () => {
    const { socket, tick, reconnecting } = setup(["up", "up", "up"]);
    reconnecting(PROBE_MS * 2);
    await tick();
    await tick();
    assert.equal(socket.retries, 0);
  });

  test("online and the page becoming visible retry at once", () => {
    const { socket } = setup([]);
    dispatchEvent(new Event("online"));
    document.dispatchEvent(new Event("visibilitychange"));
    assert.ok(socket.retries >= 2);
  });
});

describe("a person who is signed out", async () => {
  const { retryWhenBack } = await import("../../static/js/reconnect.js");

  function socketWith(answers) {
    const socket = new EventTarget();
    socket.closed = [];
    socket.stop = () => (socket.stopped = true);
    socket.retryNow = () => {};
    socket.addEventListener("closed", ({ detail }) => socket.closed.push(detail));
    const fetchImpl = async (url, init) => {
      socket.asked = [url, init.redirect];
      const answer = answers.shift();
      if (answer === "down") throw new TypeError("Failed to fetch");
      return answer === "login" ? { status: 0, type: "opaqueredirect" } : { status: 200, type: "basic", ok: true };
    };
    retryWhenBack(socket, { fetchImpl, pageUrl: "/", timers: { setInterval: () => 1, clearInterval() {} } });
    return socket;
  }
  const failed = (socket, attempt) =>
    socket.dispatchEvent(new CustomEvent("reconnecting", { detail: { attempt, delay: 0 } }));
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

  test("every third failed attempt asks the page; a login redirect ends the retries", async () => {
    const socket = socketWith(["login"]);
    failed(socket, 1);
    failed(socket, 2);
    await settle();
    assert.equal(socket.asked, undefined, "not on every attempt");
    failed(socket, 3);
    await settle();
    assert.deepEqual(socket.asked, ["/", "manual"]);
    assert.equal(socket.stopped, true);
    assert.equal(socket.closed.length, 1);
    assert.equal(socket.closed[0].retry, "none");
    assert.match(socket.closed[0].message, /signed out/);
  });

  test("a signed-in page or an unreachable server keeps the retries going", async () => {
    const socket = socketWith(["ok", "down"]);
    failed(socket, 3);
    failed(socket, 6);
    await settle();
    assert.equal(socket.stopped, undefined);
    assert.deepEqual(socket.closed, []);
  });
});

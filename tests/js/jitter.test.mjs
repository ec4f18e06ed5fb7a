import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { JitterBuffer } from "../../static/js/jitter.js";

const QUANTUM = 128;

/** 24 kHz PCM16 ramp chunks: sample k of the stream has value (k % 1000) + 1. */
function* chunks(count, size = 2400) {
  let k = 0;
  for (let c = 0; c < count; c++) {
    const chunk = new Int16Array(size);
    for (let i = 0; i < size; i++) chunk[i] = (k++ % 1000) + 1;
    yield chunk;
  }
}

function pullFrames(buffer, quanta) {
  const out = new Float32Array(QUANTUM);
  const frames = [];
  let audible = 0;
  for (let q = 0; q < quanta; q++) {
    audible += buffer.pull(out);
    frames.push(...out);
  }
  return { frames, audible };
}

describe("JitterBuffer", () => {
  test("waits for the pre-buffer, then plays gap-free across chunk boundaries", () => {
    const buffer = new JitterBuffer({ outputRate: 48000, prebufferMs: 80 });
    const feed = chunks(10); // 10 × 100 ms
    buffer.push(feed.next().value.subarray(0, 960)); // 40 ms: not enough yet
    assert.equal(pullFrames(buffer, 1).audible, 0);
    assert.equal(buffer.playing, false);
    buffer.push(feed.next().value); // now ≥ 80 ms
    for (const chunk of feed) buffer.push(chunk);
    const { frames, audible } = pullFrames(buffer, 300); // 800 ms at 48 kHz
    assert.equal(audible, 300 * QUANTUM);
    assert.equal(buffer.underruns, 0);
    // Upsampling 24 → 48 kHz by interpolation: every step is half a ramp step (no gaps, no
    // repeats, no jumps) except the two interpolated steps where the ramp wraps 1000 → 1.
    let jumps = 0;
    for (let i = 1; i < frames.length; i++) {
      const step = (frames[i] - frames[i - 1]) * 0x8000;
      if (Math.abs(step - 0.5) > 1e-3) jumps++;
    }
    const wraps = Math.floor(buffer.played / 1000);
    assert.ok(jumps <= 2 * wraps + 2, `${jumps} discontinuities for ${wraps} wraps`);
    assert.ok(buffer.playedMs > 780 && buffer.playedMs < 820, `played ${buffer.playedMs} ms`);
  });

  test("a short reply starts without the full pre-buffer once it is marked as ended", () => {
    const buffer = new JitterBuffer({ outputRate: 24000, prebufferMs: 80 });
    buffer.push(new Int16Array(480).fill(1000)); // 20 ms
    buffer.markEnd();
    const { audible } = pullFrames(buffer, 10);
    assert.ok(audible >= 478, `audible ${audible}`);
    assert.equal(buffer.underruns, 0, "the end of a reply is not a stall");
    assert.equal(buffer.buffered, 0);
    assert.equal(buffer.playing, false);
  });

  test("a short reply also starts after the maximum wait without markEnd", () => {
    const buffer = new JitterBuffer({ outputRate: 48000, prebufferMs: 80, maxWaitMs: 50 });
    buffer.push(new Int16Array(480).fill(1000));
    const before = pullFrames(buffer, 10); // 27 ms: still waiting
    assert.equal(before.audible, 0);
    const after = pullFrames(buffer, 20);
    assert.ok(after.audible > 0);
  });

  test("running dry mid-reply counts an underrun and re-buffers", () => {
    const buffer = new JitterBuffer({ outputRate: 24000, prebufferMs: 80 });
    buffer.push(new Int16Array(2400).fill(500)); // 100 ms
    pullFrames(buffer, 30); // 160 ms of output: runs dry
    assert.equal(buffer.underruns, 1);
    assert.equal(buffer.playing, false);
    buffer.push(new Int16Array(960).fill(500)); // 40 ms: below the pre-buffer again
    assert.equal(pullFrames(buffer, 1).audible, 0);
  });

  test("flush fades out within 5 ms and drops everything queued", () => {
    const buffer = new JitterBuffer({ outputRate: 48000, prebufferMs: 20 });
    buffer.push(new Int16Array(24000 * 10).fill(16000)); // 10 s queued
    pullFrames(buffer, 4);
    assert.ok(buffer.bufferedMs > 9000);
    buffer.flush(5);
    const out = new Float32Array(QUANTUM);
    const fadeFrames = [];
    let quanta = 0;
    while (buffer.playing && quanta < 10) {
      buffer.pull(out);
      fadeFrames.push(...out);
      quanta++;
    }
    assert.ok(quanta <= 2, `${quanta} quanta to fade`); // 5 ms = 240 frames at 48 kHz
    const audible = fadeFrames.filter((x) => x !== 0);
    assert.ok(audible.length > 200 && audible.length <= 240, `${audible.length} fade frames`);
    for (let i = 1; i < audible.length; i++) assert.ok(audible[i] <= audible[i - 1] + 1e-9, "fading down");
    assert.equal(buffer.buffered, 0);
    assert.equal(pullFrames(buffer, 5).audible, 0);
  });

  test("flush before playback starts clears at once", () => {
    const buffer = new JitterBuffer({ outputRate: 48000 });
    buffer.push(new Int16Array(100));
    buffer.flush();
    assert.equal(buffer.buffered, 0);
    assert.equal(buffer.playing, false);
  });

  test("new audio after a flush plays from its own start", () => {
    const buffer = new JitterBuffer({ outputRate: 24000, prebufferMs: 10 });
    buffer.push(new Int16Array(4800).fill(8000));
    pullFrames(buffer, 5);
    buffer.flush();
    buffer.push(new Int16Array(2400).fill(-8000));
    const { frames } = pullFrames(buffer, 10);
    const first = frames.find((x) => x !== 0);
    assert.ok(first < 0, "the old reply's audio is gone");
  });

  test("grows beyond its initial 10 s and caps the backlog", () => {
    const buffer = new JitterBuffer({ outputRate: 24000, maxSeconds: 15 });
    for (let s = 0; s < 20; s++) buffer.push(new Int16Array(24000).fill(s));
    assert.equal(buffer.buffered, 24000 * 15);
    assert.equal(buffer.dropped, 24000 * 5);
    const out = new Float32Array(QUANTUM);
    buffer.pull(out);
    buffer.pull(out);
    assert.ok(Math.abs(out[0] * 0x8000 - 5) < 1e-3, "the oldest seconds were dropped");
  });

  test("downsampling to a lower device rate keeps time", () => {
    const buffer = new JitterBuffer({ outputRate: 16000, prebufferMs: 0 });
    buffer.push(new Int16Array(24000).fill(100)); // 1 s
    buffer.markEnd();
    const { audible } = pullFrames(buffer, 200);
    assert.ok(Math.abs(audible - 16000) <= 2, `audible ${audible}`);
    assert.ok(Math.abs(buffer.playedMs - 1000) < 1);
  });
});

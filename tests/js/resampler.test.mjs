import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { CaptureChunker, Resampler, meterLevel, rms, toInt16 } from "../../static/js/resampler.js";

function sine(freq, rate, seconds, amplitude = 0.5) {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

function blocks(signal, size = 128) {
  const out = [];
  for (let i = 0; i < signal.length; i += size) out.push(signal.subarray(i, i + size));
  return out;
}

function resampleAll(resampler, signal, size = 128) {
  const parts = [];
  for (const block of blocks(signal, size)) parts.push(...resampler.process(block));
  return Float32Array.from(parts);
}

describe("toInt16", () => {
  test("clamps instead of wrapping", () => {
    assert.equal(toInt16(1), 32767);
    assert.equal(toInt16(1.5), 32767);
    assert.equal(toInt16(-1), -32768);
    assert.equal(toInt16(-7), -32768);
    assert.equal(toInt16(0), 0);
    assert.equal(toInt16(Number.NaN), 0);
    assert.equal(toInt16(0.5), 16384);
  });
});

describe("Resampler", () => {
  for (const rate of [48000, 44100, 32000, 22050, 16000, 8000]) {
    test(`${rate} Hz → 16 kHz keeps the duration across 128-frame blocks`, () => {
      const out = resampleAll(new Resampler(rate, 16000), sine(440, rate, 1));
      assert.ok(Math.abs(out.length - 16000) <= 1, `got ${out.length} samples`);
    });
  }

  test("a constant stays constant (box filter has unit gain)", () => {
    const out = resampleAll(new Resampler(44100, 16000), new Float32Array(4410).fill(0.25));
    for (const x of out) assert.ok(Math.abs(x - 0.25) < 1e-6);
  });

  test("speech-band tones pass, near-Nyquist tones are attenuated", () => {
    const level = (freq) => rms(resampleAll(new Resampler(48000, 16000), sine(freq, 48000, 0.5)).subarray(100));
    const pass = level(300);
    assert.ok(pass > 0.33 && pass < 0.36, `300 Hz rms ${pass}`); // 0.5/√2 ≈ 0.354
    assert.ok(level(15000) < 0.05, "15 kHz would alias into the speech band without filtering");
  });

  test("the block size does not change the result", () => {
    const signal = sine(1000, 44100, 0.2);
    const a = resampleAll(new Resampler(44100, 16000), signal, 128);
    const b = resampleAll(new Resampler(44100, 16000), signal, 37);
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5);
  });

  test("rejects bad rates", () => {
    assert.throws(() => new Resampler(0, 16000), RangeError);
  });
});

describe("CaptureChunker", () => {
  test("48 kHz blocks become 100 ms chunks of 1600 Int16 samples", () => {
    const chunker = new CaptureChunker({ inputRate: 48000 });
    const chunks = [];
    for (const block of blocks(sine(200, 48000, 1))) chunks.push(...chunker.push(block));
    assert.equal(chunker.chunkSamples, 1600);
    assert.ok(chunks.length === 10 || chunks.length === 9);
    for (const { pcm } of chunks) {
      assert.ok(pcm instanceof Int16Array);
      assert.equal(pcm.length, 1600);
    }
  });

  test("chunks are fresh buffers (safe to transfer)", () => {
    const chunker = new CaptureChunker({ inputRate: 16000 });
    const [first] = chunker.push(new Float32Array(1600).fill(0.1));
    const [second] = chunker.push(new Float32Array(1600).fill(-0.1));
    assert.notEqual(first.pcm.buffer, second.pcm.buffer);
    assert.ok(first.pcm[0] > 0 && second.pcm[0] < 0);
  });

  test("loud input clamps and the meter reads high; silence reads zero", () => {
    const chunker = new CaptureChunker({ inputRate: 16000 });
    const [loud] = chunker.push(new Float32Array(1600).fill(2));
    assert.equal(loud.pcm[0], 32767);
    assert.equal(loud.level, 1);
    const [quiet] = chunker.push(new Float32Array(1600));
    assert.equal(quiet.level, 0);
  });
});

describe("meterLevel", () => {
  test("maps -60..0 dBFS to 0..1", () => {
    assert.equal(meterLevel(0), 0);
    assert.equal(meterLevel(1), 1);
    assert.ok(Math.abs(meterLevel(0.001) - 0) < 1e-9);
    assert.ok(Math.abs(meterLevel(Math.SQRT1_2 * 0.0316) - 0.5) < 0.06);
  });
});

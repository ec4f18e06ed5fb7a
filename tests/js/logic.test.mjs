// Small pure helpers: protocol policy, page state, settings, URL safety, media errors, frames.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { mediaErrorMessage } from "../../static/js/errors.js";
import { fitWithin, frameEdge, thumbDifference } from "../../static/js/frames.js";
import { CloseCode, Limits, Server, TransportCode, backoffDelay, closeInfo } from "../../static/js/protocol.js";
import { DEFAULT_PERSONAS, VOICES, resolveSettings } from "../../static/js/settings.js";
import { PageState, deriveState, statusText } from "../../static/js/state.js";
import { prettyJson, safeUrl } from "../../static/js/ui.js";

describe("protocol mirror", () => {
  const read = (path) => readFileSync(new URL(`../../assistant/live/${path}`, import.meta.url), "utf8");
  const python = read("browser_protocol.py");
  const closeCodes = read("close_codes.py");
  const limits = read("limits.py");

  test("every CloseCode of close_codes.py is mirrored with the same value", () => {
    const start = closeCodes.indexOf("class CloseCode");
    const block = closeCodes.slice(start, closeCodes.indexOf("\nclass ", start + 1));
    const codes = [...block.matchAll(/^\s+([A-Z_]+) = (\d+)/gm)];
    assert.ok(codes.length > 10);
    for (const [, name, value] of codes) assert.equal(CloseCode[name], Number(value), name);
    assert.equal(Object.keys(CloseCode).length, codes.length, "no code that the server lacks");
  });

  test("every client message type of browser_protocol.py is known", async () => {
    const { Client } = await import("../../static/js/protocol.js");
    const types = python.match(/CLIENT_TYPES = frozenset\(\s*\{([^}]*)\}\s*\)/)[1].match(/"[^"]+"/g).map((t) => JSON.parse(t));
    assert.deepEqual([...types].sort(), Object.values(Client).sort());
  });

  test("every event the web adapter sends has a name the page knows", () => {
    const adapter = readFileSync(new URL("../../assistant/live/adapters/web.py", import.meta.url), "utf8");
    const sent = new Set([...adapter.matchAll(/[^\w]event\("([a-z.]+)"/g)].map(([, name]) => name));
    for (const name of ["turn.reason", "waiting", "thinking", "voice", "transcript.interim"]) {
      assert.ok(sent.has(name), `web.py no longer sends ${name}`);
    }
    for (const name of sent) assert.ok(Object.values(Server).includes(name), `${name} is not in Server`);
  });

  test("limits match", () => {
    assert.match(limits, new RegExp(`MAX_TEXT_CHARS = ${Limits.MAX_TEXT_CHARS}\\b`));
    assert.match(limits, new RegExp(`MAX_PERSONA_CHARS = ${Limits.MAX_PERSONA_CHARS}\\b`));
    assert.match(limits, /MAX_VIDEO_BYTES = 512 \* 1024/);
    assert.match(limits, /MAX_AUDIO_BYTES = 32 \* 1024/);
  });

  test("close policy: transient codes reconnect, refusals do not", () => {
    assert.equal(closeInfo(TransportCode.ABNORMAL).retry, "auto");
    assert.equal(closeInfo(CloseCode.SERVICE_RESTART).retry, "auto");
    assert.equal(closeInfo(CloseCode.SLOW_CLIENT).retry, "auto");
    assert.equal(closeInfo(CloseCode.UPSTREAM_REJECTED).retry, "manual");
    assert.equal(closeInfo(CloseCode.SUPERSEDED).retry, "manual");
    assert.equal(closeInfo(CloseCode.DAILY_LIMIT).retry, "none");
    assert.equal(closeInfo(CloseCode.IDLE).retry, "idle");
    assert.equal(closeInfo(4999).retry, "manual");
    assert.equal(closeInfo(CloseCode.ENDED, "Ended by staff").message, "Ended by staff");
  });

  test("backoff: quick first, growing, jittered after the second attempt", () => {
    assert.equal(backoffDelay(0, () => 0.9), 0);
    assert.equal(backoffDelay(1, () => 0.9), 300);
    assert.equal(backoffDelay(2, () => 0), 1200);
    assert.equal(backoffDelay(2, () => 0.5), 1700);
    assert.equal(backoffDelay(50, () => 0), 7000);
  });
});

describe("page state", () => {
  test("derived from link, mic, playback and reply", () => {
    assert.equal(deriveState({ link: "idle", mic: true }), "idle");
    assert.equal(deriveState({ link: "connecting", playing: true }), "connecting");
    assert.equal(deriveState({ link: "ready" }), "ready");
    assert.equal(deriveState({ link: "ready", mic: true }), "listening");
    assert.equal(deriveState({ link: "ready", mic: true, playing: true }), "speaking");
    assert.equal(deriveState({ link: "ready", replying: true }), "speaking");
    assert.equal(deriveState({ link: "reconnecting", mic: true }), "reconnecting");
    assert.equal(deriveState({ link: "error" }), "error");
  });

  test("PageState reports changes only", () => {
    const seen = [];
    const state = new PageState((next, previous) => seen.push(`${previous}→${next}`));
    state.update({ link: "connecting" });
    state.update({ link: "ready", mic: true });
    state.update({ playing: true });
    state.update({ playing: true });
    state.update({ playing: false });
    assert.deepEqual(seen, ["idle→connecting", "connecting→listening", "listening→speaking", "speaking→listening"]);
  });

  test("status text carries the reason", () => {
    assert.equal(statusText("error", "Daily limit reached."), "Error: Daily limit reached.");
    assert.equal(statusText("listening"), "Listening");
  });

  test("status text says when the model thinks, waits for you, or hears you", () => {
    assert.equal(statusText("ready", "", { waiting: true }), "Waiting for you");
    assert.equal(statusText("listening", "", { waiting: true }), "Waiting for you");
    assert.equal(statusText("speaking", "", { thinking: true, waiting: true }), "Thinking…");
    assert.equal(statusText("listening", "", { hearing: true }), "Hearing you…");
    assert.equal(statusText("ready", "", { muted: true }), "Muted");
    assert.equal(statusText("ready", "", { muted: true, waiting: true }), "Waiting for you");
    // Not live: the connection's own state wins.
    assert.equal(statusText("reconnecting", "", { waiting: true }), "Reconnecting…");
    assert.equal(statusText("error", "Gone.", { thinking: true }), "Error: Gone.");
  });
});

describe("settings", () => {
  const AUTOMATIC = { language: "", resolution: "" };

  test("falls back to the server's voice, the first persona, automatic language and resolution", () => {
    assert.deepEqual(resolveSettings(null, { voice: "Kore" }), {
      voice: "Kore",
      modality: "audio",
      persona: DEFAULT_PERSONAS[0].id,
      ...AUTOMATIC,
    });
  });

  test("rejects stored values that are no longer offered", () => {
    const stored = { voice: "Nobody", modality: "video", persona: "gone", language: "xx-XX", resolution: "ultra" };
    assert.deepEqual(resolveSettings(stored, {}), { voice: "Puck", modality: "audio", persona: "default", ...AUTOMATIC });
    assert.equal(resolveSettings({ modality: "text" }, {}).modality, "text");
  });

  test("server personas and voices win over the built-in lists", () => {
    const config = { voices: ["Aoede"], personas: [{ id: "chef", label: "Chef", text: "You cook." }] };
    assert.deepEqual(resolveSettings({ persona: "chef" }, config), {
      voice: "Aoede",
      modality: "audio",
      persona: "chef",
      ...AUTOMATIC,
    });
  });

  test("all 30 prebuilt voices without a server list, the same as personas.py", () => {
    assert.equal(VOICES.length, 30);
    const python = readFileSync(new URL("../../assistant/personas.py", import.meta.url), "utf8");
    const block = python.slice(python.indexOf("VOICE_STYLES = {"), python.indexOf("VOICES = list"));
    assert.deepEqual([...block.matchAll(/^ {4}"([A-Za-z]+)":/gm)].map(([, name]) => name), VOICES);
    assert.equal(resolveSettings({ voice: "Sulafat" }, {}).voice, "Sulafat");
  });

  test("a language and a camera quality the server offers are kept", () => {
    const config = {
      languages: [["", "Automatic"], ["de-DE", "German"], ["ja-JP", "Japanese"]],
      mediaResolutions: [["", "Default"], ["low", "Low"], ["high", "High"]],
    };
    const values = resolveSettings({ language: "ja-JP", resolution: "low" }, config);
    assert.equal(values.language, "ja-JP");
    assert.equal(values.resolution, "low");
    assert.equal(resolveSettings({ language: "fr-FR", resolution: "medium" }, config).language, "");
    assert.equal(resolveSettings({ resolution: "medium" }, config).resolution, "");
    assert.equal(resolveSettings({ resolution: "high" }, {}).resolution, "high"); // built-in list
  });
});

describe("safe rendering helpers", () => {
  test("only absolute http(s) URLs survive", () => {
    assert.equal(safeUrl("https://example.org/a?b=1"), "https://example.org/a?b=1");
    assert.equal(safeUrl("http://example.org"), "http://example.org/");
    for (const bad of ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "/relative", "", null, "vbscript:x"]) {
      assert.equal(safeUrl(bad), "", String(bad));
    }
  });

  test("prettyJson is readable and capped", () => {
    assert.equal(prettyJson({ a: 1 }), '{\n  "a": 1\n}');
    assert.equal(prettyJson(undefined), "");
    assert.ok(prettyJson({ x: "y".repeat(10_000) }, 100).endsWith("…"));
  });
});

describe("media errors", () => {
  test("permission, missing device, busy device and insecure page are told apart", () => {
    assert.match(mediaErrorMessage({ name: "NotAllowedError" }, "microphone"), /blocked.*site settings/);
    assert.match(mediaErrorMessage({ name: "NotFoundError" }, "camera"), /No camera was found/);
    assert.match(mediaErrorMessage({ name: "NotReadableError" }, "microphone"), /in use/);
    assert.match(mediaErrorMessage({ name: "NotSupportedError" }, "camera"), /HTTPS/);
    assert.match(mediaErrorMessage({ name: "NotAllowedError" }, "screen"), /cancelled/);
  });
});

describe("frames", () => {
  test("frame size follows the camera quality", () => {
    assert.equal(frameEdge("low"), 512);
    assert.equal(frameEdge(""), 768);
    assert.equal(frameEdge("medium"), 768);
    assert.equal(frameEdge("high"), 1024);
  });

  test("downscale to the long edge, never up", () => {
    assert.deepEqual(fitWithin(1920, 1080, 768), { width: 768, height: 432 });
    assert.deepEqual(fitWithin(720, 1280, 768), { width: 432, height: 768 });
    assert.deepEqual(fitWithin(640, 480, 768), { width: 640, height: 480 });
  });

  test("thumbnail difference finds unchanged pictures", () => {
    const a = new Uint8ClampedArray(16 * 16 * 4).fill(100);
    const b = a.slice();
    assert.equal(thumbDifference(a, b), 0);
    b.fill(130);
    assert.equal(thumbDifference(a, b), 30);
    assert.equal(thumbDifference(a, null), Infinity);
  });
});

describe("quota", async () => {
  const { Quota, quotaText } = await import("../../static/js/quota.js");

  test("the remainder reads in minutes, then seconds, then none", () => {
    assert.equal(quotaText(2989), "49 min left today");
    assert.equal(quotaText(59.9), "59 s left today");
    assert.equal(quotaText(0), "No live time left today");
    assert.equal(quotaText(-3), "No live time left today");
  });

  test("it counts down only while a session is live", () => {
    const element = { dataset: { seconds: "61" }, textContent: "1 min left today" };
    const root = { dataset: { state: "idle" } };
    const quota = new Quota(element, root);
    quota.tick();
    assert.equal(quota.seconds, 61);
    root.dataset.state = "listening";
    quota.tick();
    quota.tick();
    assert.equal(element.textContent, "59 s left today");
    assert.equal(element.dataset.seconds, "59");
    root.dataset.state = "error";
    quota.tick();
    assert.equal(quota.seconds, 59);
  });
});

describe("transport closes", () => {
  test("1009 (over daphne's frame limit) is treated like 4413: no automatic retry", () => {
    assert.deepEqual(closeInfo(TransportCode.TOO_BIG), closeInfo(CloseCode.TOO_LARGE));
    assert.equal(closeInfo(1009).retry, "manual");
  });
});

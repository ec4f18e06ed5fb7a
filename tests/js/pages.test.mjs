// Issue 14 part B's pure front-end pieces: the remembered device choice and the constraints
// getUserMedia gets, the Copy button's fallback, and the quota's refresh when a session ends.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { cameraConstraint, chooseDevices, chosenDevices, listDevices, loadDevices, microphoneConstraint } from "../../static/js/devices.js";
import { Quota } from "../../static/js/quota.js";

function memoryStorage(initial = {}) {
  const data = { ...initial };
  return { getItem: (k) => data[k] ?? null, setItem: (k, v) => (data[k] = String(v)), data };
}

describe("device choice", () => {
  test("no choice: the browser's default microphone and the facing mode asked for", () => {
    loadDevices(memoryStorage());
    assert.deepEqual(microphoneConstraint(), {});
    assert.deepEqual(cameraConstraint("environment"), { facingMode: { ideal: "environment" } });
  });

  test("a choice is used by getUserMedia's constraints and remembered", () => {
    const storage = memoryStorage();
    loadDevices(storage);
    chooseDevices({ microphone: "mic-2" });
    chooseDevices({ camera: "cam-9" });
    assert.deepEqual(microphoneConstraint(), { deviceId: { ideal: "mic-2" } });
    assert.deepEqual(cameraConstraint("user"), { deviceId: { ideal: "cam-9" } });
    loadDevices(memoryStorage(storage.data)); // the next page load
    assert.deepEqual(chosenDevices(), { microphone: "mic-2", camera: "cam-9" });
  });

  test("garbage in storage is ignored", () => {
    loadDevices(memoryStorage({ "pastra.devices": "{not json" }));
    assert.deepEqual(chosenDevices(), { microphone: "", camera: "" });
    loadDevices(memoryStorage({ "pastra.devices": JSON.stringify({ microphone: 5, camera: "x".repeat(600) }) }));
    assert.deepEqual(chosenDevices(), { microphone: "", camera: "" });
  });

  test("devices without an id (no permission yet) and the 'default' alias are not listed", async () => {
    const mediaDevices = {
      enumerateDevices: async () => [
        { kind: "audioinput", deviceId: "default", label: "Default" },
        { kind: "audioinput", deviceId: "a1", label: "Headset" },
        { kind: "audioinput", deviceId: "a1", label: "Headset" },
        { kind: "videoinput", deviceId: "", label: "" },
        { kind: "videoinput", deviceId: "v1", label: "" },
        { kind: "audiooutput", deviceId: "o1", label: "Speaker" },
      ],
    };
    assert.deepEqual(await listDevices(mediaDevices), {
      microphone: [{ id: "a1", label: "Headset" }],
      camera: [{ id: "v1", label: "" }],
    });
    assert.deepEqual(await listDevices({ enumerateDevices: async () => { throw new Error("no"); } }), { microphone: [], camera: [] });
  });
});

describe("quota refresh", () => {
  test("the server's figure replaces the countdown's, only while no session is live", async () => {
    const element = { dataset: { seconds: "3000", url: "/quota/" }, textContent: "" };
    const root = { dataset: { state: "idle" } };
    const quota = new Quota(element, root);
    const asked = [];
    const fetchImpl = async (url) => {
      asked.push(url);
      return { ok: true, json: async () => ({ seconds: 1799 }) };
    };
    await quota.refresh(fetchImpl);
    assert.deepEqual(asked, ["/quota/"]);
    assert.equal(element.textContent, "29 min left today");
    assert.equal(quota.seconds, 1799);
    await quota.refresh(async () => ({ ok: false }));
    await quota.refresh(async () => { throw new Error("offline"); });
    assert.equal(quota.seconds, 1799); // kept
  });
});

describe("quota refresh after a short session", () => {
  test("a session shorter than a tick still asks the server when it ends", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
    const observers = [];
    const saved = { MutationObserver: globalThis.MutationObserver, fetch: globalThis.fetch };
    t.after(() => Object.assign(globalThis, saved));
    globalThis.MutationObserver = class {
      constructor(callback) {
        this.callback = callback;
        observers.push(this);
      }
      observe() {}
    };
    const asked = [];
    globalThis.fetch = async (url) => {
      asked.push(url);
      return { ok: true, json: async () => ({ seconds: 600 }) };
    };
    const element = { dataset: { seconds: "3600", url: "/quota/" }, textContent: "" };
    const root = { dataset: { state: "idle" } };
    new Quota(element, root).start();
    root.dataset.state = "ready"; // connected and replied…
    observers[0].callback();
    root.dataset.state = "idle"; // …and stopped, all between two ticks
    observers[0].callback();
    t.mock.timers.tick(1500);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(asked, ["/quota/"]);
    assert.equal(element.textContent, "10 min left today");
  });
});

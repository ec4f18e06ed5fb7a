// Entry point of the assistant page: read the config, find the elements, wire the controls.
// No logic here; see app.js.
import { App } from "./app.js";
import { Quota } from "./quota.js";
import { Settings } from "./settings.js";

const root = document.querySelector("[data-pastra]");

if (root) {
  const config = JSON.parse(document.getElementById("pastra-config")?.textContent || "{}");
  const byId = (id) => root.querySelector(`[data-testid="${id}"]`);
  const ui = {
    root,
    status: byId("status"),
    notice: byId("notice"),
    retry: byId("retry-button"),
    recordLink: byId("conversation-link"),
    stage: root.querySelector("[data-stage]"),
    transcript: byId("transcript"),
    toolsPanel: root.querySelector("[data-tools]"),
    talk: byId("talk-button"),
    ptt: byId("ptt-button"),
    mute: byId("mute-button"),
    camera: byId("camera-button"),
    flip: byId("flip-camera-button"),
    screen: byId("screen-button"),
    input: byId("text-input"),
    meter: root.querySelector("[data-meter]"),
    outputMeter: root.querySelector("[data-meter-out]"),
    preview: root.querySelector("[data-preview]"),
    video: byId("video-preview"),
    sendingLabel: root.querySelector("[data-sending-label]"),
    dialog: root.querySelector("#settings"),
  };
  const settings = new Settings(root.querySelector("[data-settings]"), config);
  const app = new App(ui, config, settings);
  new Quota(byId("quota-remaining"), root).start();

  ui.talk.addEventListener("click", () => app.toggleTalk());
  ui.mute.addEventListener("click", () => app.toggleMute());
  ui.camera.addEventListener("click", () => app.video("camera"));
  ui.flip.addEventListener("click", () => app.video("flip"));
  ui.screen.addEventListener("click", () => app.video("screen"));
  ui.retry.addEventListener("click", () => app.connect());
  byId("interrupt-button").addEventListener("click", (event) => app.interrupt(event.timeStamp));
  root.querySelector("[data-composer]").addEventListener("submit", (event) => {
    event.preventDefault();
    if (app.sendText(ui.input.value, event.timeStamp)) ui.input.value = "";
    ui.input.focus();
  });
  // Pre-connect while the person types their first message.
  ui.input.addEventListener("input", () => ui.input.value.trim() && app.connect(), { once: true });
  byId("new-conversation").addEventListener("click", () => {
    app.newConversation();
    history.replaceState(null, "", location.pathname); // a reload starts afresh too
  });
  byId("settings-button").addEventListener("click", () => ui.dialog.showModal());
  ui.dialog.addEventListener("close", () => {
    if (ui.dialog.returnValue === "new") app.newConversation();
    else app.applySettings();
  });

  // Audio output starts inside a user gesture. A touch's pointerdown is not one (its
  // pointerup and touchend are), so listen for all the events that count; unlocking is
  // cheap once the audio is running.
  for (const type of ["pointerdown", "pointerup", "touchend", "keydown"]) {
    document.addEventListener(type, () => app.unlockAudio(), { capture: true, passive: true });
  }
  const resume = new URLSearchParams(location.search).get("conversation");
  if (resume) app.resume(resume);
  root.dataset.ready = "true"; // the controls work from here on (tests wait for it)

  // The app shell for installing and fast starts; only where the server routes /sw.js.
  const { serviceWorker: worker, staticUrl } = root.dataset;
  if (worker && "serviceWorker" in navigator) {
    const url = `${worker}?static=${encodeURIComponent(staticUrl || "/static/")}`;
    navigator.serviceWorker.register(url, { scope: "/" }).catch(() => {});
  }
}

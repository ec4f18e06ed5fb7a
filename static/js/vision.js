// Camera and screen controls: one source at a time, a small preview (full screen on demand,
// with the controls and captions over it), flip where there are two cameras, ≤ 1 frame/s to
// the socket with a visible "sending" indicator.
import { mediaErrorMessage } from "./errors.js";
import { FrameSender, frameEdge } from "./frames.js";
import { VideoSource } from "./media.js";
import { setPressed, show } from "./ui.js";

export class Vision extends EventTarget {
  #ui;
  #source;
  #frames;
  #cameras = 0;

  /** ui: {root, preview, video, sendingLabel, camera, flip, screen}; send({mime, data}) → bool */
  constructor(ui, send) {
    super();
    this.#ui = ui;
    this.#source = new VideoSource(ui.video);
    this.#frames = new FrameSender(ui.video, (frame) => send({ ...frame, source: this.#source.kind ?? "camera" }));
    this.#source.addEventListener("change", () => this.#changed());
    this.#frames.addEventListener("frame", ({ detail }) => this.#sent(detail.count));
    show(ui.screen, VideoSource.canShareScreen);
    show(ui.flip, false);
    this.#fullscreenButton()?.addEventListener("click", () => this.fullscreen(!this.isFullscreen));
    document.addEventListener("keydown", (event) => event.key === "Escape" && this.fullscreen(false));
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.#countCameras());
  }

  get active() {
    return this.#source.kind !== null;
  }

  /** "camera" | "screen" | null */
  get kind() {
    return this.#source.kind;
  }

  /** The camera, screen and flip buttons: "camera" | "screen" | "flip". Turning a source on
   * needs a session (`connect()`); turning it off or flipping must not open one. */
  act(action, connect) {
    if (action !== "flip" && this.kind !== action) connect();
    if (action === "camera") return this.toggleCamera();
    return action === "screen" ? this.toggleScreen() : this.flip();
  }

  async toggleCamera() {
    if (this.#source.kind === "camera") return this.stop();
    await this.#run("camera", () => this.#source.startCamera());
    await this.#countCameras();
  }

  async toggleScreen() {
    if (this.#source.kind === "screen") return this.stop();
    await this.#run("screen", () => this.#source.startScreen());
  }

  async flip() {
    await this.#run("camera", () => this.#source.flip());
  }

  stop() {
    this.#source.stop();
  }

  get isFullscreen() {
    return this.#ui.root.dataset.fullscreen === "true";
  }

  /** The preview fills the screen (the dock and the latest captions over it), or not. */
  fullscreen(on) {
    const { root } = this.#ui;
    const next = Boolean(on) && this.active;
    if (next) root.dataset.fullscreen = "true";
    else delete root.dataset.fullscreen;
    const button = this.#fullscreenButton();
    if (!button) return;
    setPressed(button, next);
    button.setAttribute("aria-label", next ? "Exit full screen" : "Full screen");
  }

  #fullscreenButton() {
    return this.#ui.preview.querySelector("[data-testid='fullscreen-button']");
  }

  /** The camera quality (media resolution) chosen: frames are sized to what the model keeps. */
  quality(resolution) {
    this.#frames.maxEdge = frameEdge(resolution);
  }

  async #run(kind, start) {
    try {
      await start();
    } catch (error) {
      this.dispatchEvent(new CustomEvent("problem", { detail: mediaErrorMessage(error, kind) }));
    }
  }

  async #countCameras() {
    this.#cameras = await VideoSource.cameraCount();
    show(this.#ui.flip, this.#source.kind === "camera" && this.#cameras > 1);
  }

  #changed() {
    const { kind } = this.#source;
    const ui = this.#ui;
    setPressed(ui.camera, kind === "camera");
    setPressed(ui.screen, kind === "screen");
    show(ui.preview, kind !== null);
    show(ui.flip, kind === "camera" && this.#cameras > 1);
    ui.preview.dataset.kind = kind ?? "";
    ui.sendingLabel.textContent = kind === "screen" ? "Sharing your screen" : "Sharing your camera";
    ui.root.dataset.video = kind ?? "";
    if (kind) this.#frames.start();
    else this.#frames.stop();
    if (!kind) this.fullscreen(false); // nothing to show full screen
    this.dispatchEvent(new CustomEvent("change", { detail: { kind } }));
  }

  #sent(count) {
    const { root, preview } = this.#ui;
    root.dataset.framesSent = String(count);
    preview.dataset.pulse = preview.dataset.pulse === "a" ? "b" : "a";
  }
}

// Camera or screen, one source at a time, shown in a <video> preview. Feature detection only
// (no user-agent sniffing): screen sharing where getDisplayMedia exists, a flip button where
// there is more than one camera. The browser's own "Stop sharing" ends the source here too.
// Events: "change" {kind: "camera" | "screen" | null}.
import { cameraConstraint } from "./devices.js";
import { unsupported } from "./errors.js";

export class VideoSource extends EventTarget {
  #video;
  #stream = null;
  #kind = null;
  #facing = "user";

  constructor(video) {
    super();
    this.#video = video;
  }

  static get canShareScreen() {
    return typeof navigator.mediaDevices?.getDisplayMedia === "function";
  }

  /** How many cameras the browser reports (labels need permission; the count does not). */
  static async cameraCount() {
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      return devices.filter((device) => device.kind === "videoinput").length;
    } catch {
      return 0;
    }
  }

  get kind() {
    return this.#kind;
  }

  get facing() {
    return this.#facing;
  }

  async startCamera(facing = this.#facing) {
    if (!navigator.mediaDevices?.getUserMedia) throw unsupported("getUserMedia");
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { ...cameraConstraint(facing), width: { ideal: 1280 }, height: { ideal: 720 } },
    });
    this.#facing = facing;
    this.#attach(stream, "camera");
  }

  /** Switch to the next camera (front ⇄ back on a phone). The running camera is released
   * first: many phones cannot open a second camera while one is in use. The next one is
   * chosen by device id where the browser lists several, else by facing mode; if it cannot
   * be opened, the previous camera comes back and the error is reported. */
  async flip() {
    if (this.#kind !== "camera") return;
    const previous = this.#facing;
    const next = previous === "user" ? "environment" : "user";
    const video = (await this.#nextCamera()) ?? { facingMode: { ideal: next } };
    for (const track of this.#stream?.getTracks() ?? []) track.stop();
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { ...video, width: { ideal: 1280 }, height: { ideal: 720 } },
      });
    } catch (error) {
      try {
        await this.startCamera(previous);
      } catch {
        this.stop();
      }
      throw error;
    }
    this.#facing = stream.getVideoTracks()[0]?.getSettings?.().facingMode || next;
    this.#attach(stream, "camera");
  }

  async #nextCamera() {
    const current = this.#stream?.getVideoTracks()[0]?.getSettings?.().deviceId;
    let cameras = [];
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      cameras = devices.filter((device) => device.kind === "videoinput" && device.deviceId);
    } catch {
      return null;
    }
    if (cameras.length < 2) return null;
    const index = cameras.findIndex((device) => device.deviceId === current);
    return { deviceId: { exact: cameras[(index + 1) % cameras.length].deviceId } };
  }

  async startScreen() {
    if (!VideoSource.canShareScreen) throw unsupported("getDisplayMedia");
    const stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { max: 5 } },
      audio: false,
    });
    this.#attach(stream, "screen");
  }

  stop() {
    if (!this.#stream) return;
    for (const track of this.#stream.getTracks()) track.stop();
    this.#stream = null;
    this.#kind = null;
    this.#video.srcObject = null;
    this.#emit();
  }

  #attach(stream, kind) {
    const previous = this.#stream;
    this.#stream = stream;
    this.#kind = kind;
    for (const track of previous?.getTracks() ?? []) track.stop();
    for (const track of stream.getVideoTracks()) {
      track.addEventListener("ended", () => stream === this.#stream && this.stop());
    }
    this.#video.srcObject = stream;
    this.#video.dataset.facing = kind === "camera" ? this.#facing : "";
    this.#video.play().catch(() => {});
    this.#emit();
  }

  #emit() {
    this.dispatchEvent(new CustomEvent("change", { detail: { kind: this.#kind } }));
  }
}

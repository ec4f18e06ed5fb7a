// Camera or screen, one source at a time, shown in a <video> preview. Feature detection only
// (no user-agent sniffing): screen sharing where getDisplayMedia exists, a flip button where
// there is more than one camera. The browser's own "Stop sharing" ends the source here too.
// Events: "change" {kind: "camera" | "screen" | null}.
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
      video: { facingMode: { ideal: facing }, width: { ideal: 1280 }, height: { ideal: 720 } },
    });
    this.#facing = facing;
    this.#attach(stream, "camera");
  }

  /** Switch front ⇄ back; on failure the current camera keeps running. */
  async flip() {
    if (this.#kind !== "camera") return;
    const next = this.#facing === "user" ? "environment" : "user";
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: { exact: next }, width: { ideal: 1280 }, height: { ideal: 720 } },
    });
    this.#facing = next;
    this.#attach(stream, "camera");
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

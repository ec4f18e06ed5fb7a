// Video frames for the model: at most one per second, downscaled (long edge ≤ 768 px) into one
// reused canvas, JPEG, skipped when the picture has not changed (but refreshed every 10 s),
// when the page is hidden, or when the socket is backed up.
// Events: "frame" {count, bytes}.
import { Limits } from "./protocol.js";

/** Scale (width, height) down to fit `max` on the long edge; never up. */
export function fitWithin(width, height, max) {
  const scale = Math.min(1, max / Math.max(width, height, 1));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** Mean absolute difference of two small RGBA thumbnails, 0..255 (Infinity if incomparable). */
export function thumbDifference(a, b) {
  if (!a || !b || a.length !== b.length || !a.length) return Infinity;
  let sum = 0;
  for (let i = 0; i < a.length; i += 4) {
    sum += Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]);
  }
  return sum / ((a.length / 4) * 3);
}

const THUMB = 16;
// Long edge of a frame per camera quality: a low media resolution keeps little detail, so
// smaller frames cost less upload for the same answer; high keeps the most.
const EDGES = { low: 512, medium: 768, high: 1024 };

/** The long edge (px) of frames for a media resolution ("" → the default, 768). */
export function frameEdge(resolution) {
  return EDGES[resolution] ?? EDGES.medium;
}

export class FrameSender extends EventTarget {
  #video;
  #send;
  #options;
  #canvas = document.createElement("canvas");
  #thumb = document.createElement("canvas");
  #timer = null;
  #busy = false;
  #lastThumb = null;
  #lastSentAt = 0;
  count = 0;

  constructor(video, send, { intervalMs = 1000, maxEdge = 768, quality = 0.7, refreshMs = 10000 } = {}) {
    super();
    this.#video = video;
    this.#send = send;
    this.#options = { intervalMs, maxEdge, quality, refreshMs };
  }

  start() {
    if (this.#timer !== null) return;
    this.#lastThumb = null;
    this.#timer = setInterval(() => this.#tick(), this.#options.intervalMs);
    setTimeout(() => this.#tick(), 300); // the first frame soon after the preview starts
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
  }

  set maxEdge(pixels) {
    this.#options.maxEdge = pixels;
  }

  async #tick() {
    const video = this.#video;
    if (this.#timer === null || this.#busy || document.hidden) return;
    if (video.readyState < 2 || !video.videoWidth) return;
    this.#busy = true;
    try {
      const thumb = this.#thumbnail(video);
      const stale = performance.now() - this.#lastSentAt > this.#options.refreshMs;
      if (!stale && thumbDifference(thumb, this.#lastThumb) < 2) return;
      const data = await this.#jpeg(video);
      if (data && this.#timer !== null && this.#send({ mime: "image/jpeg", data })) {
        this.#lastThumb = thumb;
        this.#lastSentAt = performance.now();
        this.count += 1;
        this.dispatchEvent(new CustomEvent("frame", { detail: { count: this.count, bytes: data.length } }));
      }
    } finally {
      this.#busy = false;
    }
  }

  #thumbnail(video) {
    const context = this.#thumb.getContext("2d", { willReadFrequently: true });
    this.#thumb.width = this.#thumb.height = THUMB;
    context.drawImage(video, 0, 0, THUMB, THUMB);
    return context.getImageData(0, 0, THUMB, THUMB).data;
  }

  async #jpeg(video) {
    const { width, height } = fitWithin(video.videoWidth, video.videoHeight, this.#options.maxEdge);
    const canvas = this.#canvas;
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    canvas.getContext("2d").drawImage(video, 0, 0, width, height);
    for (const quality of [this.#options.quality, 0.5, 0.3]) {
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
      if (blob && blob.size <= Limits.MAX_VIDEO_BYTES) return base64(blob);
    }
    return "";
  }
}

async function base64(blob) {
  const url = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
  return url.slice(url.indexOf(",") + 1);
}

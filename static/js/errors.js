// Clear, actionable messages for getUserMedia / getDisplayMedia failures (pure: node-tested).

const DEVICE = { microphone: "microphone", camera: "camera", screen: "screen sharing" };

/** A sentence a person can act on, for a media error of `kind` (microphone|camera|screen). */
export function mediaErrorMessage(error, kind = "microphone") {
  const device = DEVICE[kind] ?? kind;
  const name = error?.name ?? "";
  if (name === "NotAllowedError" || name === "PermissionDeniedError") {
    if (kind === "screen") return "Screen sharing was cancelled or blocked.";
    return `Access to the ${device} was blocked. Allow it in your browser's site settings (the icon next to the address), then try again.`;
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return `No ${device} was found. Connect one and try again.`;
  }
  if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
    return `The ${device} is in use by another app or could not start. Close other apps using it and try again.`;
  }
  if (name === "SecurityError" || name === "NotSupportedError" || name === "TypeError") {
    return `This page cannot use the ${device} here. It needs HTTPS and a browser that supports it.`;
  }
  return `Could not start the ${device}${error?.message ? `: ${error.message}` : "."}`;
}

/** Throw the same kind of error the browser would when an API is missing (insecure context). */
export function unsupported(what) {
  const error = new Error(`${what} is not available`);
  error.name = "NotSupportedError";
  return error;
}

/** The device was released while it was starting (the session ended): not a failure. */
export function stopped() {
  const error = new Error("stopped while starting");
  error.name = "StoppedError";
  return error;
}

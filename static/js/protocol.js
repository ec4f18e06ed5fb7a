// The web UI's socket protocol on /ws/live/: a mirror of assistant/live/browser_protocol.py,
// limits.py and close_codes.py (docs/browser-protocol.md). Binary frames are PCM16 mono,
// little-endian: 16 kHz up, 24 kHz down. Everything else is a JSON object with a `type`.

export const INPUT_RATE = 16000;
export const OUTPUT_RATE = 24000;

export const Client = Object.freeze({
  START: "start",
  TEXT: "text",
  MIC_STOPPED: "mic.stopped",
  VIDEO: "video",
  TOOL_RESULT: "tool.result",
  PING: "ping",
  STOP: "stop",
  INTERRUPT: "interrupt", // {played_ms, heard, by}: the person stopped the reply
  ACTIVITY_START: "activity.start", // push-to-talk (start.activity "manual") pressed
  ACTIVITY_END: "activity.end", // … released
});

export const Server = Object.freeze({
  SESSION: "session",
  TRANSCRIPT: "transcript",
  TRANSCRIPT_INTERIM: "transcript.interim", // the user's line so far, replaced as they speak
  INTERRUPTED: "interrupted",
  TURN_COMPLETE: "turn.complete", // `status`: IN_PROGRESS (more may follow) or IDLE
  TURN_REASON: "turn.reason", // why a turn has no (whole) reply: {reason, message}
  WAITING: "waiting", // the model waits for the user to go on
  THINKING: "thinking", // an extended-thinking model is working on the reply
  VOICE: "voice", // the user's voice activity: {activity: "start" | "end"}
  TOOL: "tool",
  TOOL_CALL: "tool.call",
  CODE: "code",
  CODE_RESULT: "code.result",
  GROUNDING: "grounding",
  USAGE: "usage",
  NOTICE: "notice",
  ERROR: "error",
  PONG: "pong",
  RECEIVED: "received", // {id}: the server has the typed message `id` (protocol 2)
});

// Sizes of assistant/live/limits.py (a node test compares them).
export const Limits = Object.freeze({
  MAX_AUDIO_BYTES: 32 * 1024,
  MAX_VIDEO_BYTES: 512 * 1024,
  MAX_TEXT_CHARS: 8000,
  MAX_PERSONA_CHARS: 4000,
});

// Close codes of assistant/live/close_codes.py (same names and values; a node test
// compares them), then the transport-level codes a browser or a proxy may report.
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  SERVICE_RESTART: 4001,
  BAD_MESSAGE: 4400,
  UNAUTHENTICATED: 4401,
  NOT_FOUND: 4404,
  START_TIMEOUT: 4408,
  TOO_LARGE: 4413,
  SUPERSEDED: 4409,
  ENDED: 4410,
  MODEL_NOT_ALLOWED: 4422,
  TOO_MANY_SESSIONS: 4429,
  DAILY_LIMIT: 4430,
  RATE_LIMITED: 4431,
  IDLE: 4432,
  SLOW_CLIENT: 4433,
  INTERNAL: 4500,
  UPSTREAM_UNAVAILABLE: 4502,
  UPSTREAM_REJECTED: 4503,
});

export const TransportCode = Object.freeze({
  GOING_AWAY: 1001,
  ABNORMAL: 1006, // no close frame: network loss, or a refused handshake (e.g. signed out)
  TOO_BIG: 1009, // a frame over the server's 1 MiB frame limit (daphne), like 4413
  SERVER_ERROR: 1011,
  RESTARTING: 1012,
  TRY_AGAIN_LATER: 1013,
});

// What the page does after a close (docs/browser-protocol.md, "Close codes"): "auto"
// reconnects and resumes the conversation, "manual" shows the reason and a Retry button,
// "idle" quietly returns to idle (the next tap or message resumes), "none" shows the reason.
const POLICY = new Map([
  [CloseCode.NORMAL, ["idle", "Session ended."]],
  [CloseCode.SERVICE_RESTART, ["auto", "The server is restarting."]],
  [CloseCode.START_TIMEOUT, ["auto", "The session took too long to start."]],
  [CloseCode.RATE_LIMITED, ["auto", "Too many messages, too fast."]],
  [CloseCode.SLOW_CLIENT, ["auto", "The connection was too slow."]],
  [CloseCode.INTERNAL, ["auto", "The server had a problem."]],
  [TransportCode.GOING_AWAY, ["auto", "The server went away."]],
  [TransportCode.ABNORMAL, ["auto", "The connection was lost."]],
  [TransportCode.SERVER_ERROR, ["auto", "The server had a problem."]],
  [TransportCode.RESTARTING, ["auto", "The server is restarting."]],
  [TransportCode.TRY_AGAIN_LATER, ["auto", "The server is busy."]],
  [CloseCode.IDLE, ["idle", "Paused after a while without activity. Talk or type to go on."]],
  [CloseCode.UNAUTHENTICATED, ["none", "You are signed out. Reload the page to sign in."]],
  [CloseCode.BAD_MESSAGE, ["manual", "The page sent something the server did not understand."]],
  [CloseCode.TOO_LARGE, ["manual", "The page sent something too large."]],
  [TransportCode.TOO_BIG, ["manual", "The page sent something too large."]],
  [CloseCode.NOT_FOUND, ["manual", "That conversation no longer exists."]],
  [CloseCode.SUPERSEDED, ["manual", "This conversation continued in another tab or device."]],
  [CloseCode.ENDED, ["manual", "The session was ended."]],
  [CloseCode.MODEL_NOT_ALLOWED, ["none", "This model is not available on this server."]],
  [CloseCode.TOO_MANY_SESSIONS, ["manual", "Too many live sessions: close another tab first."]],
  [CloseCode.DAILY_LIMIT, ["none", "You have used today's live time."]],
  [CloseCode.UPSTREAM_UNAVAILABLE, ["manual", "The assistant service is unavailable. Try again later."]],
  [CloseCode.UPSTREAM_REJECTED, ["manual", "The assistant service refused the session."]],
]);

/** {retry, message} for a close code; the server's reason, when it gave one, wins. */
export function closeInfo(code, reason = "") {
  const [retry, fallback] = POLICY.get(code) ?? ["manual", `Connection closed (${code}).`];
  return { retry, message: reason?.trim() || fallback };
}

/** The reconnect delay before attempt n (0-based): quick first, ease-out, capped at 7 s,
 * jittered (up to 1 s, from the third attempt) so that clients do not retry in step. There
 * is no last attempt: the page retries for as long as it is open. */
export function backoffDelay(attempt, random = Math.random) {
  const steps = [0, 300, 1200, 2700, 4800, 7000];
  const base = steps[Math.min(attempt, steps.length - 1)];
  const jitter = attempt >= 2 ? random() * 1000 : 0;
  return Math.round(base + jitter);
}

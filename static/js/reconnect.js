// Reconnect at once when there is reason to think it would work now, instead of waiting out
// the backoff: the browser is back online, the page is visible again, or the server, which
// did not answer, answers HTTP again (probed every 2 s while a reconnect waits). And not at
// all once the person is signed out: a refused handshake looks like a lost connection, so
// every third failed attempt asks the page itself (it redirects to the login when signed out).
import { CloseCode, closeInfo } from "./protocol.js";

export const PROBE_MS = 2000;

/** socket: a LiveSocket. probeUrl: a cheap same-origin URL (/healthz); pageUrl: this page. */
export function retryWhenBack(socket, options = {}) {
  const { probeUrl = "/healthz", pageUrl = globalThis.location?.pathname ?? "/" } = options;
  const { fetchImpl = globalThis.fetch, timers = globalThis } = options;
  let probe = null;
  let down = false; // the server did not answer the last probe
  const now = () => socket.retryNow();
  const stop = () => {
    timers.clearInterval(probe);
    probe = null;
    down = false;
  };
  const check = async () => {
    let ok = false;
    try {
      ok = (await fetchImpl(probeUrl, { cache: "no-store", credentials: "same-origin" })).ok;
    } catch {
      ok = false;
    }
    if (probe === null) return;
    if (ok && down) {
      stop();
      now();
    } else down = !ok;
  };
  addEventListener("online", now);
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && now());
  const signedOut = async () => {
    try {
      const page = await fetchImpl(pageUrl, { redirect: "manual", cache: "no-store", credentials: "same-origin" });
      return page.type === "opaqueredirect" || page.status === 401 || page.status === 403;
    } catch {
      return false; // unreachable says nothing about the sign-in
    }
  };
  socket.addEventListener("reconnecting", async ({ detail }) => {
    if (probe === null && detail.delay >= PROBE_MS && fetchImpl) probe = timers.setInterval(check, PROBE_MS);
    if (!fetchImpl || detail.attempt % 3 !== 0 || !(await signedOut())) return;
    socket.stop(); // no more retries; what was typed is handed back as unsent
    const code = CloseCode.UNAUTHENTICATED;
    socket.dispatchEvent(new CustomEvent("closed", { detail: { code, ...closeInfo(code) } }));
  });
  socket.addEventListener("open", stop);
  socket.addEventListener("closed", stop);
}

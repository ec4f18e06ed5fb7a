// Reconnect at once when there is reason to think it would work now, instead of waiting out
// the backoff: the browser is back online, the page is visible again, or the server, which
// did not answer, answers HTTP again (probed every 2 s while a reconnect waits).

export const PROBE_MS = 2000;

/** socket: a LiveSocket. probeUrl: a cheap same-origin URL (/healthz). */
export function retryWhenBack(socket, { probeUrl = "/healthz", fetchImpl = globalThis.fetch, timers = globalThis } = {}) {
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
  socket.addEventListener("reconnecting", ({ detail }) => {
    if (probe === null && detail.delay >= PROBE_MS && fetchImpl) probe = timers.setInterval(check, PROBE_MS);
  });
  socket.addEventListener("open", stop);
  socket.addEventListener("closed", stop);
}

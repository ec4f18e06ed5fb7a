// Admin live view (templates/admin/assistant/conversation/live.html): appends the timeline
// rows that assistant/live_view.py sends over /ws/admin/conversations/<uuid>/ as the live
// session records them, on whichever worker it runs. textContent only; reconnects with the
// last row it has, so nothing is shown twice or missed.
// Staff-only, so it lives outside static/js (the user app's service-worker shell).

const COLUMNS = ["seq", "turn", "time", "label", "text", "data", "duration"];
const STATUS = { active: "Active", ended: "Ended", failed: "Failed", deleted: "Deleted" };
// assistant/live/close_codes.py WatchCode: not logged in, not staff, no such conversation.
const FINAL = new Set([4401, 4403, 4404]);

const table = document.getElementById("pastra-live-timeline");
const body = table.tBodies[0];
const statusEl = document.getElementById("pastra-live-status");
const connectionEl = document.getElementById("pastra-live-connection");
const emptyEl = document.getElementById("pastra-live-empty");
const endButton = document.querySelector("#pastra-live-end [type=submit]");

let after = Number(table.dataset.after) || 0;
let delay = 500;

function row(event) {
  const tr = document.createElement("tr");
  tr.className = `pastra-timeline__${event.role}`;
  tr.dataset.seq = String(event.seq);
  for (const name of COLUMNS) {
    const td = document.createElement("td");
    td.textContent = event[name] == null ? "" : String(event[name]);
    tr.append(td);
  }
  return tr;
}

function show(message) {
  let status = message.status;
  for (const event of message.events || []) {
    if (event.seq <= after) continue; // already on the page
    after = event.seq;
    body.append(row(event));
    if (emptyEl) emptyEl.hidden = true;
    // The session's own "ended" row is written just before the conversation is marked ended.
    if (event.kind === "session") status = event.text === "ended" ? "ended" : "active";
  }
  if (status) {
    statusEl.textContent = STATUS[status] || status;
    if (endButton) endButton.disabled = status !== "active";
  }
  connectionEl.textContent = message.live === false ? "not live (channel layer unavailable)" : "live";
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${table.dataset.socket}?after=${after}`);
  socket.addEventListener("open", () => {
    delay = 500;
  });
  socket.addEventListener("message", (message) => {
    try {
      show(JSON.parse(message.data));
    } catch (error) {
      console.warn("admin live view: unreadable message", error);
    }
  });
  socket.addEventListener("close", (close) => {
    if (FINAL.has(close.code)) {
      connectionEl.textContent = "refused (sign in again as staff)";
      return;
    }
    connectionEl.textContent = "reconnecting…";
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 10000);
  });
}

connect();

// The connection as the person sees it: session states, reconnects (and whether the model
// still remembers the conversation after one), closes with their reason and, where it helps,
// a Retry button; typed messages the server never received are marked "Not sent" (Resend).
import { Server } from "./protocol.js";
import { h } from "./ui.js";

export const GOES_ON = "Reconnected: the conversation goes on";
export const NEW_SESSION =
  "Reconnected in a new session: Pastra does not remember the earlier turns (their transcript stays here)";

/** parts: {socket, view, state, transcript, release(), mediaActive(), resend(text, id)} */
export function bindLink({ socket, view, state, transcript, release, mediaActive, resend }) {
  const on = (type, handler) => socket.addEventListener(type, ({ detail }) => handler(detail));
  let dropped = false;

  on(Server.SESSION, ({ state: link, conversation, context }) => {
    view.conversation(conversation);
    if (link === "reconnecting") {
      dropped = true;
      view.detail = "the server is switching connections";
    }
    if (link === "ready" && dropped) {
      dropped = false;
      // "goes on" only when Gemini took the resumption handle (the session event says so).
      if (!transcript.isEmpty) transcript.addMarker(context === "resumed" ? GOES_ON : NEW_SESSION);
    }
    if (["connecting", "ready", "reconnecting"].includes(link)) state.update({ link });
    if (link === "ready") view.holding(false);
  });
  // A feature the deployment adds is unavailable with this model: say so, once, in place.
  on(Server.NOTICE, ({ message }) => {
    if (message) transcript.addMarker(message, "notice");
  });
  on(Server.RECEIVED, ({ id }) => {
    const item = transcript.typed(id);
    if (item) item.dataset.sent = "true";
  });
  on("unsent", ({ messages }) => {
    for (const { id, text } of messages) {
      const item = transcript.typed(id);
      if (item && !item.dataset.unsent) markUnsent(item, () => resend(text, id));
    }
  });
  on("reconnecting", ({ message, pending }) => {
    dropped = true;
    view.detail = message;
    state.update({ link: "reconnecting", replying: false });
    view.holding(pending > 0);
  });
  on("closed", ({ retry, message }) => {
    const idle = retry === "idle";
    if (!idle) dropped = true;
    // Microphone, camera and screen never outlive the session (nor their indicators).
    if (!idle || mediaActive()) release();
    view.detail = message;
    view.notice(idle ? message : "");
    view.holding(false); // what did not go is marked "Not sent" ("unsent")
    view.offerRetry(retry === "manual");
    state.update({ link: idle ? "idle" : "error", replying: false });
  });
}

function markUnsent(item, resend) {
  item.dataset.unsent = "true";
  const button = h("button", { class: "btn btn--small", text: "Resend", attrs: { type: "button", "data-testid": "resend-button" } });
  const line = h("p", { class: "talk__unsent", text: "Not sent. " }, button);
  button.addEventListener("click", () => {
    line.remove();
    delete item.dataset.unsent;
    resend();
  });
  item.querySelector(".bubble").append(line);
}

// The connection as the person sees it: session states, reconnects, and closes with their
// reason and, where it helps, a Retry button.
import { Server } from "./protocol.js";

/** parts: {socket, view, state, transcript, release(), mediaActive()} */
export function bindLink({ socket, view, state, transcript, release, mediaActive }) {
  const on = (type, handler) => socket.addEventListener(type, ({ detail }) => handler(detail));
  let dropped = false;

  on(Server.SESSION, ({ state: link, conversation, resumed }) => {
    view.conversation(conversation);
    if (link === "ready" && dropped) {
      dropped = false;
      if (resumed && !transcript.isEmpty) transcript.addMarker("Reconnected: the conversation goes on");
    }
    if (link === "reconnecting") view.detail = "the server is switching connections";
    if (["connecting", "ready", "reconnecting"].includes(link)) state.update({ link });
  });
  // A feature the deployment adds is unavailable with this model: say so, once, in place.
  on(Server.NOTICE, ({ message }) => {
    if (message) transcript.addMarker(message, "notice");
  });
  on("reconnecting", ({ message }) => {
    dropped = true;
    view.detail = message;
    state.update({ link: "reconnecting", replying: false });
  });
  on("closed", ({ retry, message }) => {
    const idle = retry === "idle";
    // Microphone, camera and screen never outlive the session (nor their indicators).
    if (!idle || mediaActive()) release();
    view.detail = message;
    view.notice(idle ? message : "");
    view.offerRetry(retry === "manual");
    state.update({ link: idle ? "idle" : "error", replying: false });
  });
}

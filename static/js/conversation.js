// What the model says and does, from the socket to the page: audio to the player, captions
// to the transcript, tool activity to its cards, code and sources into the transcript, and
// what the model and the person are doing (thinking, waiting, speaking) to the status line.
import { Client, Server } from "./protocol.js";

const REPLYING = Object.freeze({ thinking: false, waiting: false });

/**
 * parts: {socket, player, transcript, tools, state, view, root}. `state` is the PageState;
 * the `replying` fact makes a streaming reply count as speaking (text mode has no audio).
 */
export function bindConversation({ socket, player, transcript, tools, state, view, root }) {
  const on = (type, handler) => socket.addEventListener(type, ({ detail }) => handler(detail));
  let cut = false; // the person stopped this reply: the rest of its audio and words are dropped

  on("audio", (data) => {
    if (cut) return;
    player.enqueue(data);
    transcript.thinking("");
    view.activity(REPLYING);
  });
  on(Server.TRANSCRIPT, (event) => {
    if (cut && event.role === "model" && !event.final) return;
    transcript.onTranscript(event);
    // New words from the user end the wait (the turn's final text only confirms them).
    if (event.role === "user" && !event.final) view.activity({ waiting: false });
    if (event.role === "model" && !event.final) {
      state.update({ replying: true });
      view.activity(REPLYING);
    }
  });
  on(Server.TRANSCRIPT_INTERIM, (event) => {
    transcript.onInterim(event);
    view.activity({ waiting: false });
  });
  on(Server.THINKING, () => {
    transcript.thinking("Thinking…");
    view.activity({ thinking: true, waiting: false });
  });
  on(Server.TURN_REASON, (event) => {
    transcript.onTurnReason(event);
    view.activity({ thinking: false });
  });
  on(Server.WAITING, () => view.activity({ waiting: true, thinking: false }));
  on(Server.VOICE, ({ activity }) => {
    const speaking = activity === "start";
    view.activity(speaking ? { hearing: true, waiting: false } : { hearing: false });
  });
  on(Server.INTERRUPTED, () => {
    player.flush(); // first: the barge-in budget is 100 ms
    transcript.onInterrupted();
    state.update({ replying: false });
  });
  on(Server.TURN_COMPLETE, ({ status }) => {
    cut = false;
    transcript.onTurnComplete();
    player.end();
    state.update({ replying: false });
    // IN_PROGRESS: the model goes on working (a background call, more reasoning).
    const working = status === "IN_PROGRESS";
    if (working) transcript.thinking("Still working…");
    view.activity({ thinking: working, hearing: false });
  });
  const tool = (event) => {
    if ((event.phase ?? "started") === "started") transcript.addMarker(`Tool: ${event.name}`, "tool");
    tools.onEvent(event);
  };
  on(Server.TOOL, tool);
  on(Server.TOOL_CALL, (event) => {
    // The page declares no functions of its own; never leave the model waiting for one.
    const response = { error: `${event.name} cannot run in this page.` };
    tool({ ...event, phase: "started" });
    tool({ ...event, phase: "finished", ok: false, response });
    socket.send({ type: Client.TOOL_RESULT, id: event.id, name: event.name, response });
  });
  on(Server.CODE, (event) => transcript.addCode(event));
  on(Server.CODE_RESULT, (event) => transcript.addCodeResult(event));
  on(Server.GROUNDING, (event) => transcript.addGrounding(event));
  on(Server.USAGE, ({ total_tokens: total }) => {
    root.dataset.tokens = String(Number(root.dataset.tokens || 0) + (Number(total) || 0));
  });
  return {
    /** The interrupt button: the reply stops at once (its remaining audio is not played). */
    interrupt() {
      cut = true;
      player.flush();
      transcript.onInterrupted();
      state.update({ replying: false });
    },
  };
}

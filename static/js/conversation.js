// What the model says and does, from the socket to the page: audio to the player, captions
// to the transcript, tool activity to its cards, code and sources into the transcript, and
// what the model and the person are doing (thinking, waiting, speaking) to the status line.
import { Client, Server } from "./protocol.js";
import { ReplyTracker } from "./reply.js";
import { TOOL_FAILED } from "./tools.js";

const REPLYING = Object.freeze({ thinking: false, waiting: false });

/**
 * parts: {socket, player, transcript, tools, state, view, root}. `state` is the PageState;
 * the `replying` fact makes a streaming reply count as speaking (text mode has no audio).
 */
export function bindConversation({ socket, player, transcript, tools, state, view, root }) {
  const on = (type, handler) => socket.addEventListener(type, ({ detail }) => handler(detail));
  let cut = false; // the person stopped this reply: the rest of its audio and words are dropped
  const reply = new ReplyTracker();

  on("audio", (data) => {
    if (cut) return;
    reply.audio(data.byteLength, player.stats.playedMs);
    player.enqueue(data);
    transcript.thinking("");
    view.activity(REPLYING);
  });
  on(Server.TRANSCRIPT, (event) => {
    if (cut && event.role === "model") return;
    if (event.role === "model") reply.words(event.text, event.final);
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
    transcript.onInterrupted(reply.heard(player.stats.playedMs));
    state.update({ replying: false });
  });
  // A new connection: a turn the lost one left open never completes; the new one starts clean.
  on("open", () => {
    if (!reply.open && !cut) return;
    cut = false;
    reply.complete();
    transcript.onTurnComplete();
  });
  on(Server.TURN_COMPLETE, ({ status }) => {
    cut = false;
    reply.complete();
    transcript.onTurnComplete();
    player.end();
    state.update({ replying: false });
    // IN_PROGRESS: the model goes on working (a background call, more reasoning).
    const working = status === "IN_PROGRESS";
    if (working) transcript.thinking("Still working…");
    view.activity({ thinking: working, hearing: false });
  });
  const chips = new Map(); // the transcript's line for each call, updated when it fails
  const tool = (event) => {
    const phase = event.phase ?? "started";
    if (phase === "started") chips.set(event.id, transcript.addMarker(`Tool: ${event.name}`, "tool"));
    const chip = chips.get(event.id);
    if (chip && phase === "finished" && event.ok === false) {
      chip.dataset.status = "failed";
      chip.firstChild.textContent = `Tool ${event.name} failed: ${event.message || TOOL_FAILED}`;
      chip.firstChild.classList.add("marker--error");
    }
    tools.onEvent(event);
  };
  on(Server.TOOL, tool);
  on(Server.TOOL_CALL, (event) => {
    // The page declares no functions of its own; never leave the model waiting for one.
    const response = { error: `${event.name} cannot run in this page.` };
    tool({ ...event, phase: "started" });
    tool({ ...event, phase: "finished", ok: false, response, message: response.error });
    socket.send({ type: Client.TOOL_RESULT, id: event.id, name: event.name, response });
  });
  on(Server.CODE, (event) => transcript.addCode(event));
  on(Server.CODE_RESULT, (event) => transcript.addCodeResult(event));
  on(Server.GROUNDING, (event) => transcript.addGrounding(event));
  on(Server.USAGE, ({ total_tokens: total }) => {
    root.dataset.tokens = String(Number(root.dataset.tokens || 0) + (Number(total) || 0));
  });
  return {
    /** The model's reply is audible or still arriving (so the person would talk over it). */
    get speaking() {
      return player.stats.playing || reply.open;
    },

    /**
     * The person stopped the reply (by: "button" | "text" | "voice"; since: the
     * performance.now() time of their action): silence at once, the reply marked
     * "(interrupted)" with the words heard, the server told. Returns false if nothing played.
     */
    interrupt(by = "button", since = performance.now()) {
      if (!this.speaking) return false;
      player.flush(since); // first: the budget is 100 ms
      const playedMs = player.stats.playedMs;
      const heard = reply.heard(playedMs);
      if (reply.open) cut = true; // the rest of this reply is still on its way: drop it
      transcript.onInterrupted(heard);
      state.update({ replying: false, playing: false });
      const played = Math.max(0, Math.round(playedMs - reply.startedAt));
      socket.send({ type: Client.INTERRUPT, played_ms: played, heard: heard.slice(0, 2000), by });
      reply.complete();
      return true;
    },
  };
}

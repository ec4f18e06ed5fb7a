// One Live session through the official @google/genai JS SDK, for tests/live/test_js_sdk.py.
// Usage: node live.mjs BASE_URL KEY MODE TEXT...
//   MODE "turns": connect with KEY (v1beta), send each TEXT as realtime text, one turn each;
//   MODE "ephemeral": mint a one-use token with KEY (authTokens.create, v1alpha), then connect
//   with the token (the SDK switches to BidiGenerateContentConstrained) and do the same.
// Prints one JSON line per turn: {said, reason, waiting, status}; a close before the end of a
// turn prints {closed: code, reason} and exits 3.
import { GoogleGenAI, Modality } from "@google/genai";

const [baseUrl, key, mode, ...texts] = process.argv.slice(2);
const MODEL = "gemini-3.8-live";
const CONFIG = { responseModalities: [Modality.AUDIO], outputAudioTranscription: {} };

async function credential() {
  if (mode !== "ephemeral") return { apiKey: key, apiVersion: "v1beta" };
  const backend = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl, apiVersion: "v1alpha" } });
  const token = await backend.authTokens.create({
    config: { uses: 1, liveConnectConstraints: { model: MODEL, config: CONFIG } },
  });
  console.log(JSON.stringify({ token: token.name.slice(0, 12) }));
  return { apiKey: token.name, apiVersion: "v1alpha" };
}

const { apiKey, apiVersion } = await credential();
const ai = new GoogleGenAI({ apiKey, httpOptions: { baseUrl, apiVersion } });
let turn = [];
let turnDone = () => {};
const session = await ai.live.connect({
  model: MODEL,
  config: CONFIG,
  callbacks: {
    onmessage: (message) => {
      turn.push(message);
      if (message.serverContent?.turnComplete) turnDone();
    },
    onerror: (error) => {
      console.log(JSON.stringify({ error: String(error?.message ?? error) }));
      process.exit(2);
    },
    onclose: (event) => {
      if (turn !== null) {
        console.log(JSON.stringify({ closed: event.code, reason: event.reason }));
        process.exit(3);
      }
    },
  },
});
for (const text of texts) {
  const finished = new Promise((resolve) => (turnDone = resolve));
  session.sendRealtimeInput({ text });
  await finished;
  const last = turn.at(-1).serverContent;
  const said = turn.map((m) => m.serverContent?.outputTranscription?.text ?? "").join("");
  console.log(
    JSON.stringify({
      said,
      reason: last.turnCompleteReason ?? null,
      waiting: last.waitingForInput ?? false,
      status: last.interactionStatus ?? null,
    }),
  );
  turn = [];
}
turn = null; // the close that follows is ours
session.close();

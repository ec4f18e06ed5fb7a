// Session settings: voice, response modality, persona (system-instruction presets from the
// server's config, or built-in ones). Remembered in localStorage (nothing secret); a change
// applies from the next `start` (the page restarts a running session to apply it).
import { Limits } from "./protocol.js";

export const VOICES = ["Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr"];
export const MODALITIES = [
  ["audio", "Speech"],
  ["text", "Text only"],
];
export const DEFAULT_PERSONAS = [
  { id: "default", label: "Helpful assistant", text: "" },
  { id: "brief", label: "Brief", text: "Answer in one or two short sentences unless asked for more." },
  {
    id: "tutor",
    label: "Patient tutor",
    text: "You are a patient tutor. Explain step by step, check understanding, and encourage questions.",
  },
  {
    id: "guide",
    label: "Describe what you see",
    text: "Describe what the camera or screen shows clearly and concisely, useful for someone who cannot see it.",
  },
];
const KEY = "pastra.settings";

/** Valid settings from whatever was stored and what the server offers (pure). */
export function resolveSettings(stored, config = {}) {
  const voices = config.voices?.length ? config.voices : VOICES;
  const personas = personaList(config);
  const value = stored && typeof stored === "object" ? stored : {};
  return {
    voice: voices.includes(value.voice) ? value.voice : voices.includes(config.voice) ? config.voice : voices[0],
    modality: MODALITIES.some(([id]) => id === value.modality) ? value.modality : "audio",
    persona: personas.some((p) => p.id === value.persona) ? value.persona : personas[0].id,
  };
}

export function personaList(config = {}) {
  const list = Array.isArray(config.personas) ? config.personas : [];
  const valid = list.filter((p) => p && typeof p.id === "string" && typeof p.label === "string");
  return valid.length ? valid : DEFAULT_PERSONAS;
}

export class Settings extends EventTarget {
  #form;
  #config;
  #storage;
  values;

  constructor(form, config, storage = globalThis.localStorage) {
    super();
    this.#form = form;
    this.#config = config;
    this.#storage = storage;
    let stored = null;
    try {
      stored = JSON.parse(storage?.getItem(KEY) ?? "null");
    } catch {
      stored = null;
    }
    this.values = resolveSettings(stored, config);
    this.#fill();
    form.addEventListener("change", () => this.#read());
  }

  /** What goes into `start`. */
  startOptions() {
    const persona = personaList(this.#config).find((p) => p.id === this.values.persona);
    const options = { modality: this.values.modality, voice: this.values.voice };
    if (this.#config.model) options.model = this.#config.model;
    if (persona?.text) options.persona = persona.text.slice(0, Limits.MAX_PERSONA_CHARS);
    return options;
  }

  #fill() {
    const { voice, persona, modality } = this.#form.elements;
    const voices = this.#config.voices?.length ? this.#config.voices : VOICES;
    voice.replaceChildren(...voices.map((name) => new Option(name, name)));
    persona.replaceChildren(...personaList(this.#config).map((p) => new Option(p.label, p.id)));
    voice.value = this.values.voice;
    persona.value = this.values.persona;
    for (const radio of modality) radio.checked = radio.value === this.values.modality;
  }

  #read() {
    const { voice, persona, modality } = this.#form.elements;
    const next = resolveSettings({ voice: voice.value, persona: persona.value, modality: modality.value }, this.#config);
    const changed = Object.keys(next).some((key) => next[key] !== this.values[key]);
    this.values = next;
    try {
      this.#storage?.setItem(KEY, JSON.stringify(next));
    } catch {
      // Private mode or full storage: the settings last for this page only.
    }
    if (changed) this.dispatchEvent(new CustomEvent("change", { detail: next }));
  }
}

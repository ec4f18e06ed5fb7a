// Session settings: voice, response modality, persona (system-instruction presets from the
// server's config, or built-in ones), reply language and camera quality (media resolution).
// Remembered in localStorage (nothing secret); a change applies from the next `start` (the
// page restarts a running session to apply it). The server's config lists win over these.
// Also in the sheet: the microphone and camera to use (devices.js, from their next start) and
// the user's standing instructions (saved on the server, from the next session on).
import { chooseDevices, fillDevicePicker, loadDevices } from "./devices.js";
import { bindInstructions } from "./instructions.js";
import { Limits } from "./protocol.js";

// The 30 prebuilt voices (assistant/personas.py VOICES, in the same order).
export const VOICES = [
  "Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr", "Achernar", "Achird",
  "Algenib", "Algieba", "Alnilam", "Autonoe", "Callirrhoe", "Despina", "Enceladus", "Erinome",
  "Gacrux", "Iapetus", "Laomedeia", "Pulcherrima", "Rasalgethi", "Sadachbia", "Sadaltager",
  "Schedar", "Sulafat", "Umbriel", "Vindemiatrix", "Zubenelgenubi",
];
// [value, label]; "" is automatic (the field is left out). The server sends the full lists.
export const LANGUAGES = [["", "Automatic (the language you speak)"]];
export const RESOLUTIONS = [
  ["", "Model default"],
  ["low", "Low: fewest tokens a frame"],
  ["medium", "Medium"],
  ["high", "High: most detail"],
];
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
  const offered = (list, wanted) => (list.some(([id]) => id === wanted) ? wanted : list[0][0]);
  return {
    voice: voices.includes(value.voice) ? value.voice : voices.includes(config.voice) ? config.voice : voices[0],
    modality: offered(MODALITIES, value.modality),
    persona: personas.some((p) => p.id === value.persona) ? value.persona : personas[0].id,
    language: offered(choices(config.languages, LANGUAGES), value.language),
    resolution: offered(choices(config.mediaResolutions, RESOLUTIONS), value.resolution),
  };
}

/** A [value, label] list from the server's config, or the built-in one. */
export function choices(list, fallback) {
  const valid = Array.isArray(list) ? list.filter((c) => Array.isArray(c) && typeof c[0] === "string") : [];
  return valid.length ? valid : fallback;
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
    loadDevices(storage);
    for (const name of ["microphone", "camera"]) {
      form.elements[name]?.addEventListener("change", ({ target }) => chooseDevices({ [name]: target.value }));
    }
    // Names and ids need permission: list again when the sheet opens and when devices change.
    form.closest("[data-pastra]")?.querySelector("[data-testid='settings-button']")
      ?.addEventListener("click", () => this.refreshDevices());
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.refreshDevices());
    this.refreshDevices();
    bindInstructions(form.closest("dialog")?.querySelector("[data-instructions]"));
  }

  /** Fill the microphone and camera lists (the remembered choice stays selected). */
  async refreshDevices() {
    const { microphone, camera } = this.#form.elements;
    await fillDevicePicker({ microphone, camera });
    this.#form.closest("[data-pastra]")?.setAttribute("data-devices-listed", "true");
  }

  /** What goes into `start`. */
  startOptions() {
    const persona = personaList(this.#config).find((p) => p.id === this.values.persona);
    const { modality, voice, language, resolution } = this.values;
    const options = { modality, voice };
    if (this.#config.model) options.model = this.#config.model;
    if (language) options.language = language;
    if (resolution) options.media_resolution = resolution;
    if (persona?.text) options.persona = persona.text.slice(0, Limits.MAX_PERSONA_CHARS);
    return options;
  }

  #fill() {
    const { voice, persona, modality, language, resolution } = this.#form.elements;
    const config = this.#config;
    const voices = config.voices?.length ? config.voices : VOICES;
    const styles = config.voiceStyles ?? {};
    voice.replaceChildren(...voices.map((name) => new Option(styles[name] ? `${name} (${styles[name]})` : name, name)));
    persona.replaceChildren(...personaList(config).map((p) => new Option(p.label, p.id)));
    language.replaceChildren(...choices(config.languages, LANGUAGES).map(([id, label]) => new Option(label, id)));
    resolution.replaceChildren(...choices(config.mediaResolutions, RESOLUTIONS).map(([id, label]) => new Option(label, id)));
    for (const name of ["voice", "persona", "language", "resolution"]) this.#form.elements[name].value = this.values[name];
    for (const radio of modality) radio.checked = radio.value === this.values.modality;
  }

  #read() {
    const { voice, persona, modality, language, resolution } = this.#form.elements;
    const read = { voice: voice.value, persona: persona.value, modality: modality.value };
    const next = resolveSettings({ ...read, language: language.value, resolution: resolution.value }, this.#config);
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

// The microphone and camera the person chose in Settings: remembered on this device
// (localStorage, nothing secret), listed by enumerateDevices (names once permission is
// granted), and the constraint getUserMedia is asked with (mic.js, media.js).
const KEY = "pastra.devices";
export const KINDS = Object.freeze({ microphone: "audioinput", camera: "videoinput" });

let chosen = { microphone: "", camera: "" };
let store = null;

/** Read the remembered choice (call once at start; `storage` is injectable for tests). */
export function loadDevices(storage = globalThis.localStorage) {
  store = storage ?? null;
  let value = null;
  try {
    value = JSON.parse(storage?.getItem(KEY) ?? "null");
  } catch {
    value = null;
  }
  chosen = clean(value);
  return { ...chosen };
}

/** The current choice: {microphone, camera} device ids, "" for the browser's default. */
export function chosenDevices() {
  return { ...chosen };
}

/** Remember a choice ({microphone?, camera?}); an id is an opaque string from the browser. */
export function chooseDevices(next) {
  chosen = clean({ ...chosen, ...next });
  try {
    store?.setItem(KEY, JSON.stringify(chosen));
  } catch {
    // Private mode or full storage: the choice lasts for this page only.
  }
  return { ...chosen };
}

/** getUserMedia's audio constraint for the chosen microphone ({} for the default). */
export function microphoneConstraint() {
  return chosen.microphone ? { deviceId: { ideal: chosen.microphone } } : {};
}

/** getUserMedia's video constraint: the chosen camera, else the facing mode asked for. */
export function cameraConstraint(facing) {
  return chosen.camera ? { deviceId: { ideal: chosen.camera } } : { facingMode: { ideal: facing } };
}

/** {microphone: [{id, label}], camera: [...]}: only devices with an id (Chromium lists
 * them without one before permission); labels may be empty before permission. */
export async function listDevices(mediaDevices = navigator.mediaDevices) {
  const lists = { microphone: [], camera: [] };
  let devices = [];
  try {
    devices = (await mediaDevices?.enumerateDevices?.()) ?? [];
  } catch {
    return lists;
  }
  for (const [name, kind] of Object.entries(KINDS)) {
    const seen = new Set();
    for (const device of devices) {
      if (device.kind !== kind || !device.deviceId || device.deviceId === "default") continue;
      if (seen.has(device.deviceId)) continue;
      seen.add(device.deviceId);
      lists[name].push({ id: device.deviceId, label: device.label || "" });
    }
  }
  return lists;
}

const LABELS = { microphone: ["Default microphone", "Microphone"], camera: ["Default camera", "Camera"] };

/** Fill the Settings sheet's <select>s ({microphone, camera}) from listDevices(); the
 * remembered choice stays selected, even while that device is not connected. */
export async function fillDevicePicker(selects, mediaDevices = navigator.mediaDevices) {
  const lists = await listDevices(mediaDevices);
  for (const [name, select] of Object.entries(selects)) {
    if (!select) continue;
    const [fallback, noun] = LABELS[name];
    const options = [new Option(fallback, "")];
    lists[name].forEach(({ id, label }, index) => options.push(new Option(label || `${noun} ${index + 1}`, id)));
    if (chosen[name] && !lists[name].some(({ id }) => id === chosen[name])) {
      options.push(new Option("The one chosen before (not connected now)", chosen[name]));
    }
    select.replaceChildren(...options);
    select.value = chosen[name];
  }
}

function clean(value) {
  const id = (v) => (typeof v === "string" && v.length <= 512 ? v : "");
  const object = value && typeof value === "object" ? value : {};
  return { microphone: id(object.microphone), camera: id(object.camera) };
}

// The user's standing instructions in the Settings sheet: saved on the server with fetch
// (JSON back), with a visible "Saved" or the reason it was not; without JavaScript the form
// posts and the server redirects back (assistant/views.py standing_instructions).

/** Wire the [data-instructions] form (none on the page: nothing to do). Its field, button and
 * status may sit elsewhere (the `form` attribute): the status is found in the document. */
export function bindInstructions(form, fetchImpl = (...args) => globalThis.fetch(...args)) {
  if (!form) return;
  const status = form.ownerDocument.querySelector("[data-instructions-status]");
  const show = (text, result) => {
    status.textContent = text;
    status.dataset.result = result;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    show("Saving…", "saving");
    try {
      const response = await fetchImpl(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok && body.saved) return show("Saved: they apply from your next session.", "saved");
      const errors = Object.values(body.errors ?? {}).flat().map((error) => error.message);
      show(errors.join(" ") || "Not saved: please try again.", "error");
    } catch {
      show("Not saved: no connection. Please try again.", "error");
    }
  });
}

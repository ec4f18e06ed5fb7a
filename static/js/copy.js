// The tokens page's Copy button: the once-only token to the clipboard (the async Clipboard
// API where the page may use it), else the token's text selected for the person to copy, and
// a visible confirmation either way ([data-copy] marks the block, data-copy-* its parts).

/** Select the whole text of `element` (the fallback, and a visible sign of what is copied). */
export function selectText(element, doc = document) {
  const range = doc.createRange();
  range.selectNodeContents(element);
  const selection = doc.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

/** Copy `text`; returns "copied" or "selected" (the text is selected for a manual copy). */
export async function copyText(text, element, { clipboard = navigator.clipboard, doc = document } = {}) {
  try {
    if (!clipboard?.writeText) throw new Error("no clipboard");
    await clipboard.writeText(text);
    return "copied";
  } catch {
    selectText(element, doc);
    try {
      if (doc.execCommand?.("copy")) return "copied";
    } catch {
      // Not allowed here either: the selection stays for a manual copy.
    }
    return "selected";
  }
}

export const MESSAGES = {
  copied: "Copied",
  selected: "Selected: press Ctrl+C (or long-press and Copy) to copy it",
};

for (const block of document.querySelectorAll("[data-copy]")) {
  const source = block.querySelector("[data-copy-source]");
  const button = block.querySelector("[data-copy-button]");
  const status = block.querySelector("[data-copy-status]");
  button?.addEventListener("click", async () => {
    const result = await copyText(source.textContent.trim(), source);
    status.textContent = MESSAGES[result];
    status.dataset.result = result;
  });
}

// Rules for the front-end source itself: safe DOM APIs only, small modules, a complete
// service-worker shell, every hook of SPEC section 9 in the page template.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const STATIC = join(ROOT, "static");

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

const scripts = files(join(STATIC, "js")).filter((f) => f.endsWith(".js"));

describe("front-end source", () => {
  test("no HTML-string sinks, eval, or var", () => {
    const banned = /\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|^\s*var\s/m;
    for (const file of [...scripts, join(STATIC, "sw.js")]) {
      assert.doesNotMatch(readFileSync(file, "utf8"), banned, relative(ROOT, file));
    }
  });

  test("modules stay small (one job each)", () => {
    for (const file of scripts) {
      const lines = readFileSync(file, "utf8").split("\n").length;
      assert.ok(lines <= 175, `${relative(ROOT, file)} has ${lines} lines`);
    }
  });

  test("the service worker caches every module and worklet", () => {
    const sw = readFileSync(join(STATIC, "sw.js"), "utf8");
    const shell = [...sw.matchAll(/^\s+"([^"]+)",$/gm)].map(([, path]) => path);
    for (const file of scripts) assert.ok(shell.includes(relative(STATIC, file)), `${relative(STATIC, file)} not in sw.js`);
    for (const path of shell) assert.ok(readFileSync(join(STATIC, path)), path);
  });

  test("the page template keeps every SPEC section 9 hook and no inline script or style", () => {
    const html = readFileSync(join(ROOT, "templates/assistant/talk.html"), "utf8");
    assert.match(html, /data-pastra data-state="idle"/);
    for (const id of ["talk-button", "mute-button", "camera-button", "flip-camera-button", "screen-button",
      "text-input", "send-button", "transcript", "tool-activity", "status", "emulator-badge"]) {
      assert.match(html, new RegExp(`data-testid="${id}"`), id);
    }
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "inline script");
    assert.doesNotMatch(html, /\sstyle=|\son[a-z]+=/i, "inline style or handler");
  });

  test("the manifest is installable", () => {
    const manifest = JSON.parse(readFileSync(join(STATIC, "manifest.webmanifest"), "utf8"));
    assert.equal(manifest.start_url, "/");
    assert.equal(manifest.display, "standalone");
    const sizes = manifest.icons.map((icon) => icon.sizes);
    assert.ok(sizes.includes("192x192") && sizes.includes("512x512"));
    assert.ok(manifest.icons.some((icon) => icon.purpose === "maskable"));
    for (const icon of manifest.icons) assert.ok(readFileSync(join(STATIC, icon.src)), icon.src);
  });
});

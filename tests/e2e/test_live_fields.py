"""The newer Live fields and the new settings in a real browser (Debian Chromium) against a live
Daphne and the emulator: a refused message says why, "waiting for you" shows, an extended-
thinking model shows that it works, interim words fill the user's line, and the voice,
language and camera quality picked in the settings reach the upstream setup."""

import asyncio
import json
import re
import threading
from unittest import mock

import pytest
import websockets
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from gemini_emulator import EmulatorThread
from tests.e2e.live_support import LiveBrowserTestCase

pytestmark = pytest.mark.e2e

THINKING_MODEL = "gemini-3.8-live-extended-thinking"

# Records, after the fact, what the page showed only briefly: every data-* flag the root took
# and every kind of transcript line or interim span that appeared. Installed by the test.
ACTIVITY_RECORDER = """
(() => {
  const root = document.querySelector("[data-pastra]");
  window.__seen = new Set();
  const note = () => {
    for (const key of ["thinking", "waiting", "userSpeaking"]) {
      if (root.dataset[key]) window.__seen.add(key);
    }
    if (root.querySelector("[data-kind='thinking']")) window.__seen.add("thinking-line");
    if (root.querySelector(".bubble__interim")) window.__seen.add("interim");
  };
  const options = { attributes: true, childList: true, subtree: true, characterData: true };
  new MutationObserver(note).observe(root, options);
})();
"""


class SetupRelay:
    """A WebSocket relay in front of the emulator that keeps the first message of every
    connection: the setup exactly as Pastra sent it upstream."""

    def __init__(self, target: str):
        self.target = target
        self.setups: list[dict] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "SetupRelay":
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self):
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())

    async def _serve(self):
        self._stop = asyncio.Event()
        async with websockets.serve(self._relay, "127.0.0.1", 0, max_size=None) as server:
            self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            self._ready.set()
            await self._stop.wait()

    async def _relay(self, client):
        headers = {"x-goog-api-key": client.request.headers.get("x-goog-api-key", "")}
        url = self.target + client.request.path
        async with websockets.connect(url, additional_headers=headers, max_size=None) as up:
            first = await client.recv()
            self.setups.append(json.loads(first))
            await up.send(first)

            async def pump(source, sink):
                async for message in source:
                    await sink.send(message)

            _done, pending = await asyncio.wait(
                [asyncio.create_task(pump(client, up)), asyncio.create_task(pump(up, client))],
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()
            close = up.close_code if up.close_code else 1000
            await client.close(close, up.close_reason or "")

    def stop(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class RelayedEmulator:
    """The emulator thread, seen by Pastra through a SetupRelay (stats still the emulator's)."""

    def __init__(self, config):
        self.emulator = EmulatorThread(config)

    def start(self):
        self.emulator.start()
        self.relay = SetupRelay(self.emulator.url).start()
        return self

    url = property(lambda self: self.relay.url)
    port = property(lambda self: self.emulator.port)

    def stop(self):
        self.relay.stop()
        self.emulator.stop()


class FieldsPage:
    def setUp(self):
        super().setUp()
        self.user = get_user_model().objects.create_user("alice", password="unused-password")

    def open(self):
        page = self.new_page(self.user)
        page.goto("/")
        root = page.locator("[data-pastra]")
        expect(root).to_have_attribute("data-ready", "true")
        page.evaluate(ACTIVITY_RECORDER)
        return page, root

    def send(self, page, text):
        page.get_by_test_id("text-input").fill(text)
        page.get_by_test_id("text-input").press("Enter")

    def seen(self, page) -> set[str]:
        return set(page.evaluate("[...window.__seen]"))


class LiveFieldsTests(FieldsPage, LiveBrowserTestCase):
    @classmethod
    def setUpClass(cls):
        with mock.patch("tests.e2e.live_support.EmulatorThread", RelayedEmulator):
            super().setUpClass()

    def test_a_refused_message_says_why_in_the_transcript(self):
        page, _root = self.open()
        self.send(page, "/refuse")
        refused = page.get_by_test_id("transcript").locator("[data-role='model'][data-reason]")
        expect(refused).to_have_attribute("data-reason", "PROHIBITED_INPUT_CONTENT")
        expect(refused).to_contain_text("safety filters blocked this message")
        expect(page.get_by_test_id("transcript").locator("[data-role='user']")).to_contain_text(
            "/refuse"
        )
        # The conversation goes on, and the next reply is a turn of its own.
        self.send(page, "hello")
        model = page.get_by_test_id("transcript").locator("[data-role='model']")
        expect(model.last).to_contain_text("You said: hello")
        expect(model).to_have_count(2)
        expect(model.last).not_to_have_attribute("data-reason", re.compile(".+"))
        self.screenshot(page, "live-refused-turn-phone")

    def test_wait_shows_that_the_model_is_waiting_for_you(self):
        page, root = self.open()
        self.send(page, "/wait")
        expect(root).to_have_attribute("data-waiting", "true")
        expect(page.get_by_test_id("status")).to_have_text("Waiting for you")
        assert root.get_attribute("data-state") in {"ready", "listening"}  # SPEC section 9
        self.screenshot(page, "live-waiting-for-you-phone")
        # Going on clears it.
        self.send(page, "and then?")
        expect(root).not_to_have_attribute("data-waiting", "true")
        expect(
            page.get_by_test_id("transcript").locator("[data-role='model']").last
        ).to_contain_text("You said: and then?")
        expect(page.get_by_test_id("status")).not_to_have_text("Waiting for you")

    def test_voice_language_and_camera_quality_reach_the_upstream_and_persist(self):
        page, root = self.open()
        page.get_by_test_id("settings-button").click()
        dialog = page.locator("#settings")
        voices = dialog.get_by_label("Voice").locator("option")
        expect(voices).to_have_count(30)
        dialog.get_by_label("Voice").select_option("Sulafat")
        dialog.get_by_label("Language").select_option("de-DE")
        dialog.get_by_label("Camera quality").select_option("low")
        expect(dialog).to_contain_text("fewer")  # what the quality costs is explained
        dialog.get_by_role("button", name="Done").click()
        before = len(self.emulator.relay.setups)
        self.send(page, "hallo")
        model = page.get_by_test_id("transcript").locator("[data-role='model']")
        expect(model.last).to_contain_text("You said: hallo")
        setup = self.emulator.relay.setups[before]["setup"]
        generation = setup["generationConfig"]
        assert generation["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"] == {
            "voiceName": "Sulafat"
        }
        assert generation["speechConfig"]["languageCode"] == "de-DE"
        assert generation["mediaResolution"] == "MEDIA_RESOLUTION_LOW"
        # Remembered for the next visit.
        page.reload()
        expect(root).to_have_attribute("data-ready", "true")
        page.get_by_test_id("settings-button").click()
        expect(dialog.get_by_label("Voice")).to_have_value("Sulafat")
        expect(dialog.get_by_label("Language")).to_have_value("de-DE")
        expect(dialog.get_by_label("Camera quality")).to_have_value("low")
        # Back to automatic: the field is left out again.
        dialog.get_by_label("Language").select_option("")
        dialog.get_by_role("button", name="Done").click()
        before = len(self.emulator.relay.setups)
        self.send(page, "again")
        expect(model.last).to_contain_text("You said: again")
        assert (
            "languageCode"
            not in self.emulator.relay.setups[before]["setup"]["generationConfig"]["speechConfig"]
        )

    def test_interim_words_fill_the_users_line_while_they_speak(self):
        page, _root = self.open()
        page.get_by_test_id("talk-button").click()
        user = page.get_by_test_id("transcript").locator("[data-role='user']")
        expect(user.last).to_contain_text(re.compile(r"\(speech \d+\.\d s\)"), timeout=20_000)
        seen = self.seen(page)
        assert "interim" in seen, seen
        assert "userSpeaking" in seen, seen
        # The final words replaced the interim ones.
        expect(user.last.locator(".bubble__interim")).to_have_count(0)
        page.get_by_test_id("talk-button").click()


class ThinkingModelTests(FieldsPage, LiveBrowserTestCase):
    model = THINKING_MODEL

    def test_an_extended_thinking_model_shows_that_it_works_and_only_its_reply(self):
        page, _root = self.open()
        self.send(page, "tell me a joke")
        model = page.get_by_test_id("transcript").locator("[data-role='model']")
        expect(model.last).to_contain_text("You said: tell me a joke")
        seen = self.seen(page)
        assert {"thinking", "thinking-line"} <= seen, seen
        # The thinking line is gone once the reply is there; no thought text is shown.
        expect(page.get_by_test_id("transcript").locator("[data-kind='thinking']")).to_have_count(0)
        expect(model).to_have_count(1)
        expect(model.last.locator(".bubble__text")).to_have_text("You said: tell me a joke")

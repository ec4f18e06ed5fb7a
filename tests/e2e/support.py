"""Browser-test support: Debian Chromium under Playwright, fake media, a live Daphne + emulator."""

import os
import shutil
import subprocess
import time
import wave
from pathlib import Path
from unittest import mock

from channels.testing import ChannelsLiveServerTestCase
from django.test import Client

from assistant.models import SessionLease

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--auto-select-desktop-capture-source=Entire screen",  # getDisplayMedia without a picker
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
PHONE = {"width": 360, "height": 640}


def speech_wav(path: Path, text: str, *, seconds_of_silence: float = 1.5) -> Path:
    """A WAV of real speech (espeak-ng), 48 kHz mono, followed by silence so VAD ends the turn."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True)
    subprocess.run(
        [
            "sox",
            str(raw),
            "-r",
            "48000",
            "-c",
            "1",
            "-b",
            "16",
            str(path),
            "pad",
            "0.3",
            str(seconds_of_silence),
        ],
        check=True,
    )
    return path


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


class BrowserTestCase(ChannelsLiveServerTestCase):
    """A live Daphne (child process), one Chromium per class, and helpers to log a user in.

    Subclasses set `env` (exported before the server forks so the child sees it) and may set
    `fake_audio` (a WAV path) for the fake microphone.
    """

    host = "127.0.0.1"
    serve_static = True
    env: dict = {}
    fake_audio: Path | None = None

    @classmethod
    def setUpClass(cls):
        from playwright.sync_api import sync_playwright

        ARTIFACTS.mkdir(exist_ok=True)
        # Playwright's sync API runs an event loop in this thread: allow the ORM here only.
        cls._env = mock.patch.dict(os.environ, {**cls.env, "DJANGO_ALLOW_ASYNC_UNSAFE": "true"})
        cls._env.start()
        super().setUpClass()
        args = list(CHROMIUM_ARGS)
        if cls.fake_audio:
            args.append(f"--use-file-for-fake-audio-capture={cls.fake_audio}%noloop")
        cls.playwright = sync_playwright().start()
        cls.browser = cls.playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=args, headless=True
        )

    @classmethod
    def tearDownClass(cls):
        try:
            cls.browser.close()
            cls.playwright.stop()
        finally:
            super().tearDownClass()
            cls._env.stop()

    def setUp(self):
        super().setUp()
        self.console: list[str] = []
        self.contexts = []

    def new_page(self, user=None, *, viewport=PHONE):
        context = self.browser.new_context(
            viewport=viewport, permissions=["microphone", "camera"], base_url=self.live_server_url
        )
        self.contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            context.add_cookies(
                [
                    {
                        "name": "sessionid",
                        "value": client.cookies["sessionid"].value,
                        "url": self.live_server_url,
                    }
                ]
            )
        page = context.new_page()
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        return page

    def wait_until(self, page, predicate: str, timeout: float = 10.0):
        """Poll a JS function expression until it returns truthy.

        Playwright's wait_for_function evaluates a string predicate with eval() inside the page,
        which Pastra's Content-Security-Policy (rightly) forbids; page.evaluate goes through
        the DevTools protocol and is not subject to it.
        """
        deadline = time.monotonic() + timeout
        while True:
            if page.evaluate(predicate):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
            page.wait_for_timeout(50)

    def screenshot(self, page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def tearDown(self):
        if self.console and any(line.startswith(("error", "pageerror")) for line in self.console):
            print("\n--- browser console ---\n" + "\n".join(self.console))
        # Close this test's pages, and let the server finish their sessions (final transcript
        # writes, lease release) before the database is flushed under them.
        for context in self.contexts:
            context.close()
        deadline = time.monotonic() + 10
        while SessionLease.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        super().tearDown()

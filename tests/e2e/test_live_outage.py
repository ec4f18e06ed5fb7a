"""Outages in a real browser (Chromium, 390x844) through a proxy that can take the server away:
what the person types meanwhile is held and sent after the reconnect (or marked "Not sent"
with Resend), the page retries by itself and at once when the server answers again, the
status never contradicts itself, and "the conversation goes on" only when it does."""

import contextlib
import re
import socket
import time

import pytest
from playwright.sync_api import expect

from assistant.models import ConversationEvent
from gemini_emulator import EmulatorConfig
from tests.e2e.live_support import DroppingProxy, LiveBrowserTestCase
from tests.e2e.test_live_ui import PageHelpers

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
GOES_ON = "Reconnected: the conversation goes on"
NEW_SESSION = "Reconnected in a new session"


class OutageProxy(DroppingProxy):
    """A DroppingProxy whose server can be taken away: while `down`, every connection (the
    page's socket, its health probe) is cut at once, as an unreachable server would be, and
    the page's socket attempts are logged; while `blackhole`, bytes are swallowed (a link
    that died without telling anyone)."""

    def __init__(self, port: int):
        self.down = False
        self.blackhole = False
        self.refused: list[tuple[float, str]] = []  # (time, request line) while down
        super().__init__(port)

    def _admit(self, client):
        if not self.down:
            return True
        with contextlib.suppress(OSError):
            client.settimeout(1)
            line = client.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
            self.refused.append((time.monotonic(), line))
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        client.close()
        return False

    def _forward(self, sink, data):
        if not self.blackhole:
            sink.sendall(data)

    def socket_attempts(self) -> list[float]:
        return [at for at, line in self.refused if line.startswith("GET /ws/live/")]

    def take_down(self):
        self.down = True
        self.drop_all()


class OutageHelpers(PageHelpers):
    def open_proxied(self):
        proxy = OutageProxy(self._port)  # cookies are per host, so the session goes along
        self.addCleanup(proxy.close)
        page = self.new_page(self.user, viewport=PHONE)
        page.goto(f"{proxy.url}/")
        expect(self.root(page)).to_have_attribute("data-ready", "true")
        return page, proxy

    def status(self, page):
        return page.get_by_test_id("status")

    def assert_clean_console(self):
        """No page errors; the browser's own lines for refused sockets are the outage's."""
        errors = [
            line
            for line in self.console
            if line.startswith(("pageerror", "error"))
            and "WebSocket connection to" not in line
            and "Failed to load resource" not in line
        ]
        assert not errors, errors


class OutageTests(OutageHelpers, LiveBrowserTestCase):
    def test_a_message_typed_in_an_outage_is_sent_after_the_reconnect(self):
        page, proxy = self.open_proxied()
        root = self.root(page)
        self.send(page, "remember this")
        expect(self.model_turns(page).last).to_have_attribute("data-final", "true", timeout=10_000)
        expect(root).to_have_attribute("data-state", "ready", timeout=10_000)
        conversation = root.get_attribute("data-conversation")

        proxy.take_down()
        expect(root).to_have_attribute("data-state", "reconnecting", timeout=10_000)
        self.send(page, "are you there")
        typed = page.get_by_test_id("transcript").locator("[data-role='user']").last
        expect(typed).to_have_attribute("data-pending", "true")
        expect(typed).not_to_have_attribute("data-sent", "true")
        expect(self.status(page)).to_contain_text("Reconnecting")
        expect(self.status(page)).to_contain_text("Your message will be sent")
        self.screenshot(page, "live-outage-waiting-phone")
        # The page keeps trying (never "gives up"): attempts at 0, 0.3, 1.2, 2.7, 4.8 s …
        # (jittered). Right after the fifth, the next is at least 7 s away: a reconnect
        # sooner than that is the page noticing that the server answers again (its probe).
        self.wait_for(lambda: len(proxy.socket_attempts()) >= 5, timeout=30, message="5 tries")
        expect(root).to_have_attribute("data-state", "reconnecting")
        assert "Reconnect to continue" not in self.status(page).inner_text()
        assert not page.get_by_test_id("retry-button").is_visible()
        proxy.down = False
        back = time.monotonic()
        expect(root).to_have_attribute("data-state", re.compile("ready|speaking"), timeout=15_000)
        waited = time.monotonic() - back
        print(f"\n[outage] server back → session ready: {waited:.1f} s")
        assert waited < 5.0, "the page did not notice the server was back (probe)"
        expect(typed).to_have_attribute("data-sent", "true")
        self.expect_reply(page, "You said: are you there")
        expect(page.get_by_test_id("transcript")).to_contain_text(GOES_ON)
        assert root.get_attribute("data-conversation") == conversation
        self.send(page, "/history")
        self.expect_reply(page, "history: 2 user turns")
        texts = ConversationEvent.objects.filter(
            conversation_id=conversation, kind=ConversationEvent.Kind.USER_TEXT
        ).values_list("text", flat=True)
        assert list(texts).count("are you there") == 1, list(texts)
        self.assert_clean_console()

    def test_a_message_sent_into_a_dead_connection_is_sent_again(self):
        page, proxy = self.open_proxied()
        root = self.root(page)
        self.send(page, "first")
        expect(self.model_turns(page).last).to_have_attribute("data-final", "true", timeout=10_000)
        expect(root).to_have_attribute("data-state", "ready", timeout=10_000)
        proxy.blackhole = True  # the link dies silently: the page still thinks it is open
        self.send(page, "lost in the tunnel")
        typed = page.get_by_test_id("transcript").locator("[data-role='user']").last
        page.wait_for_timeout(500)
        expect(typed).not_to_have_attribute("data-sent", "true")
        proxy.blackhole = False  # first: the reconnect goes at once, and must not be swallowed
        proxy.drop_all()  # ... until the connection is found dead
        expect(typed).to_have_attribute("data-sent", "true", timeout=15_000)
        self.expect_reply(page, "You said: lost in the tunnel")
        self.assert_clean_console()

    def test_a_message_that_could_not_be_sent_says_so_and_resend_sends_it(self):
        page, proxy = self.open_proxied()
        root = self.root(page)
        self.send(page, "hello")
        self.expect_reply(page, "You said: hello")
        expect(root).to_have_attribute("data-state", "ready", timeout=10_000)
        page.get_by_test_id("talk-button").click()
        expect(page.get_by_test_id("talk-button")).to_have_text("Stop")
        proxy.take_down()
        expect(root).to_have_attribute("data-state", "reconnecting", timeout=10_000)
        self.send(page, "did this arrive")
        page.get_by_test_id("talk-button").click()  # the person gives up: Stop
        expect(root).to_have_attribute("data-state", "idle")
        typed = page.get_by_test_id("transcript").locator("[data-role='user']").last
        expect(typed).to_have_attribute("data-unsent", "true")
        expect(typed).to_contain_text("Not sent.")
        resend = typed.get_by_test_id("resend-button")
        self.screenshot(page, "live-not-sent-phone")
        box = resend.bounding_box()
        assert min(box["width"], box["height"]) >= 44, box
        proxy.down = False
        resend.click()
        expect(typed).not_to_have_attribute("data-unsent", "true")
        expect(typed).to_have_attribute("data-sent", "true", timeout=10_000)
        self.expect_reply(page, "You said: did this arrive")
        self.assert_clean_console()

    def test_reconnects_end_when_the_person_is_signed_out(self):
        from django.contrib.sessions.models import Session

        page, proxy = self.open_proxied()
        root = self.root(page)
        self.send(page, "hello")
        self.expect_reply(page, "You said: hello")
        Session.objects.all().delete()  # signed out elsewhere (the handshake is refused now)
        proxy.drop_all()
        expect(root).to_have_attribute("data-state", "error", timeout=20_000)
        expect(self.status(page)).to_have_text(re.compile("You are signed out"))
        expect(page.get_by_test_id("retry-button")).to_be_hidden()
        self.assert_clean_console()


class LostContextTests(OutageHelpers, LiveBrowserTestCase):
    """Resumption handles that expire a second after their session: a reconnect after a
    longer outage resumes the conversation's record but not the model's memory."""

    emulator_config = EmulatorConfig(
        tts="synthetic", pace=4.0, playback_wait=True, resumption_ttl=1.0
    )

    def test_a_reconnect_that_lost_the_models_memory_says_so(self):
        page, proxy = self.open_proxied()
        root = self.root(page)
        self.send(page, "remember this")
        expect(self.model_turns(page).last).to_have_attribute("data-final", "true", timeout=10_000)
        expect(root).to_have_attribute("data-state", "ready", timeout=10_000)
        conversation = root.get_attribute("data-conversation")
        proxy.take_down()
        expect(root).to_have_attribute("data-state", "reconnecting", timeout=10_000)
        page.wait_for_timeout(3_000)  # the handle expires meanwhile
        proxy.down = False
        expect(root).to_have_attribute("data-state", "ready", timeout=15_000)
        transcript = page.get_by_test_id("transcript")
        expect(transcript).to_contain_text(NEW_SESSION)
        expect(transcript).not_to_contain_text(GOES_ON)
        assert root.get_attribute("data-conversation") == conversation
        self.send(page, "/history")
        self.expect_reply(page, "history: 0 user turns")
        self.wait_for(
            lambda: ConversationEvent.objects.filter(
                conversation_id=conversation, text="resume_failed"
            ).exists(),
            message="resume_failed on the record",
        )
        self.assert_clean_console()

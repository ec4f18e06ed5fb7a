"""The admin live view in a real browser: staff watch a user's conversation grow turn by turn
while the user talks in another browser, then end it with the button."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.e2e.live_support import LiveBrowserTestCase

pytestmark = pytest.mark.e2e


class AdminLiveViewTests(LiveBrowserTestCase):
    def setUp(self):
        super().setUp()
        users = get_user_model().objects
        self.user = users.create_user("alice", password="correct horse battery staple")
        self.staff = users.create_superuser("stella", "stella@example.com", "another long one")

    def send(self, page, text):
        page.get_by_test_id("text-input").fill(text)
        page.get_by_test_id("text-input").press("Enter")

    def test_staff_watch_the_turns_arrive_and_end_the_session(self):
        user_page = self.new_page(self.user)
        user_page.goto("/")
        root = user_page.locator("[data-pastra]")
        expect(root).to_have_attribute("data-ready", "true")
        self.send(user_page, "hello from the phone")
        expect(root).to_have_attribute("data-state", "ready", timeout=10_000)
        conversation = root.get_attribute("data-conversation")

        staff_page = self.new_page(self.staff, viewport={"width": 1280, "height": 800})
        staff_page.goto(f"/admin/assistant/conversation/{conversation}/live/")
        timeline = staff_page.locator("#pastra-live-timeline tbody")
        expect(staff_page.locator("#pastra-live-connection")).to_have_text("live")
        expect(staff_page.locator("#pastra-live-status")).to_have_text("Active")
        expect(timeline).to_contain_text("hello from the phone", timeout=10_000)
        first = timeline.locator("tr").first
        expect(first).to_contain_text("Session event")  # the record opens with the session
        expect(first).to_contain_text("started")

        # A new turn on the phone shows up without a reload, once, in order.
        self.send(user_page, "a second question")
        expect(timeline).to_contain_text("a second question", timeout=10_000)
        expect(timeline).to_contain_text("You said: a second question", timeout=10_000)
        seqs = [int(s) for s in timeline.locator("tr").evaluate_all(
            "rows => rows.map(r => r.dataset.seq)"
        )]  # fmt: skip
        assert seqs == list(range(1, len(seqs) + 1))
        self.screenshot(staff_page, "admin-live-view")

        staff_page.get_by_role("button", name="End session").click()
        expect(staff_page.get_by_text("Signalled the live session to end.")).to_be_visible()
        # The user's page says why it ended and does not reconnect by itself.
        status = user_page.get_by_test_id("status")
        expect(status).to_contain_text(
            re.compile("ended by an administrator", re.I), timeout=10_000
        )
        expect(root).to_have_attribute("data-state", "error")
        staff_page.goto(f"/admin/assistant/conversation/{conversation}/live/")
        expect(staff_page.locator("#pastra-live-status")).to_have_text("Ended", timeout=10_000)
        expect(staff_page.get_by_role("button", name="End session")).to_be_disabled()
        expect(staff_page.locator("#pastra-live-timeline tbody")).to_contain_text("ended")

"""Issue 14's page fixes on a 390 x 844 phone in Chromium (fake microphone and camera): the
tokens page (Copy, wrapping, stacked rows, no sideways panning), the camera view (a small
picture-in-picture preview, full screen with the controls and captions over it), History's
Continue showing the earlier turns, the landing page, New conversation, clean saved
transcripts with their details on request, the device picker, the day's remaining minutes,
standing instructions, and 44 px touch targets on every page."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from assistant import services
from assistant.models import ConversationEvent
from assistant.services import EventRecord
from tests.e2e.live_support import LiveBrowserTestCase
from tests.e2e.test_live_ui import PageHelpers

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
Kind = ConversationEvent.Kind

# Every control a finger must hit, visible on the page (inline links in running text aside,
# as WCAG 2.5.8 and Lighthouse allow), with its size: [{what, width, height}].
SMALL_TARGETS = """
() => {
  const selector = "button, select, textarea, summary, a.btn, .site-nav a, .brand, " +
    "input:not([type=hidden]):not([type=radio]):not([type=checkbox]), .field--radios label";
  return [...document.querySelectorAll(selector)]
    .filter((el) => el.checkVisibility() && el.getClientRects().length)
    .map((el) => {
      const r = el.getBoundingClientRect();
      const what = el.dataset.testid || el.getAttribute("aria-label")
        || el.textContent.trim().slice(0, 30) || el.name || el.tagName;
      return { what, width: Math.round(r.width), height: Math.round(r.height) };
    })
    .filter(({ width, height }) => width < 44 || height < 44);
}
"""
PAGE_WIDTH = "() => document.documentElement.scrollWidth"
BOX = """(el) => {
  const r = el.getBoundingClientRect();
  const { top, bottom, left, right, width, height } = r;
  return { top, bottom, left, right, width, height };
}"""
# The element at the centre of `el` is `el` or inside it: nothing covers it.
ON_TOP = """(el) => {
  const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return el === hit || el.contains(hit);
}"""


class PhonePageTests(PageHelpers, LiveBrowserTestCase):
    def open(self, path="/", **options):
        page = self.new_page(self.user, viewport=PHONE, **options)
        page.goto(path)
        expect(self.root(page)).to_have_attribute("data-ready", "true")
        return page

    def assert_no_sideways_panning(self, page):
        assert page.evaluate(PAGE_WIDTH) <= PHONE["width"], page.evaluate(PAGE_WIDTH)

    def assert_touch_targets(self, page, name):
        small = page.evaluate(SMALL_TARGETS)
        assert not small, f"{name}: touch targets under 44 px: {small}"

    # --- Tokens ---------------------------------------------------------------------------

    def test_the_tokens_page_on_a_phone_copies_wraps_stacks_and_never_pans(self):
        services.access_token_create(user=self.user, name="an old script with a long name")
        page = self.new_page(self.user, viewport=PHONE)
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.goto("/settings/tokens/")
        self.assert_no_sideways_panning(page)
        page.get_by_label("Token name").fill("phone")
        page.get_by_role("button", name="Create token").click()

        token = page.get_by_test_id("new-token")
        raw = token.inner_text().strip()
        assert raw.startswith("pst_")
        assert len(raw) > 40
        # Never cut off: all of it inside the viewport, wrapped over lines, nothing hidden.
        box = token.evaluate(BOX)
        assert box["left"] >= 0
        assert box["right"] <= PHONE["width"]
        assert token.evaluate("(el) => el.scrollWidth <= el.clientWidth")
        self.assert_no_sideways_panning(page)

        page.get_by_test_id("copy-token").click()
        expect(page.get_by_test_id("copy-status")).to_have_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == raw

        # Where the clipboard API is refused, the token is selected for a manual copy.
        page.evaluate(
            "() => { navigator.clipboard.writeText = () => Promise.reject(new Error('no'));"
            " document.execCommand = () => false; }"
        )
        page.get_by_test_id("copy-token").click()
        expect(page.get_by_test_id("copy-status")).to_contain_text("Selected")
        assert page.evaluate("() => getSelection().toString().trim()") == raw

        # Rows stack: each token is a card whose Revoke is on screen, with no panning.
        rows = page.get_by_test_id("token-table").locator("tbody tr")
        expect(rows).to_have_count(2)
        for i in range(2):
            assert rows.nth(i).evaluate("(el) => getComputedStyle(el).display") == "block"
            revoke = rows.nth(i).get_by_role("button", name=re.compile("^Revoke"))
            revoke.scroll_into_view_if_needed()
            rbox = revoke.evaluate(BOX)
            assert rbox["left"] >= 0
            assert rbox["right"] <= PHONE["width"]
        self.assert_touch_targets(page, "tokens")
        self.screenshot(page, "pages-tokens-phone")
        page.get_by_role("button", name="Revoke an old script with a long name").click()
        expect(page.get_by_text("Token revoked.")).to_be_visible()
        self.assert_no_sideways_panning(page)

    # --- Landing, history, record ---------------------------------------------------------

    def test_the_landing_page_says_what_pastra_is_and_how_to_get_in(self):
        page = self.new_page(viewport=PHONE)
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
        landing = page.get_by_test_id("landing")
        expect(landing).to_contain_text("sees, hears")
        expect(landing).to_contain_text("host yourself")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        expect(page.get_by_test_id("signup-link")).to_be_visible()
        self.assert_no_sideways_panning(page)
        self.assert_touch_targets(page, "login")
        self.screenshot(page, "pages-landing-phone")

    def test_a_saved_transcript_is_clean_with_its_details_behind_a_toggle(self):
        start = timezone.now()
        conversation = services.conversation_start(user_id=self.user.pk, model="gemini-test")
        services.conversation_record(
            conversation_id=conversation.pk,
            events=[
                EventRecord(kind=Kind.SESSION, text="started", created_at=start),
                EventRecord(kind=Kind.USER_TEXT, text="What is pasta?", created_at=start),
                EventRecord(kind=Kind.OUTPUT_TRANSCRIPT, text="Noodles.", created_at=start),
                EventRecord(kind=Kind.USAGE, data={"total_tokens": 12}, created_at=start),
                EventRecord(kind=Kind.USER_TEXT, text="Thanks", created_at=start),
            ],
        )
        page = self.new_page(self.user, viewport=PHONE)
        page.goto("/conversations/")
        self.assert_touch_targets(page, "history")
        page.get_by_text("What is pasta?").click()
        timeline = page.get_by_test_id("record-transcript")
        expect(timeline.locator("[data-role='model']")).to_contain_text("Noodles.")
        expect(timeline).not_to_contain_text("Session event")
        expect(timeline).not_to_contain_text("Usage")
        expect(timeline.locator("time")).to_have_count(1)  # one minute: one time, on top
        self.assert_touch_targets(page, "record")
        self.assert_no_sideways_panning(page)

        page.get_by_test_id("show-details").click()
        expect(timeline).to_contain_text("Session event: started")
        expect(timeline).to_contain_text("Usage: total tokens 12")
        expect(timeline.locator("time")).to_have_count(5)
        page.get_by_test_id("hide-details").click()
        expect(timeline).not_to_contain_text("Usage")

    # --- The talk page --------------------------------------------------------------------

    def test_new_conversation_is_on_the_talk_page_and_starts_afresh(self):
        page = self.open()
        root = self.root(page)
        new = page.get_by_test_id("new-conversation")
        expect(new).to_be_visible()
        assert new.evaluate(ON_TOP)
        self.assert_touch_targets(page, "talk")
        self.assert_no_sideways_panning(page)
        self.send(page, "first one")
        self.expect_reply(page, "You said: first one")
        first = root.get_attribute("data-conversation")
        assert first
        new.click()
        expect(root).to_have_attribute("data-conversation", "")
        expect(page.get_by_test_id("transcript")).to_contain_text("New conversation")
        self.send(page, "/history")
        self.expect_reply(page, "history: 0 user turns")
        expect(root).not_to_have_attribute("data-conversation", first)
        page.get_by_test_id("settings-button").click()
        self.assert_touch_targets(page, "settings sheet")
        self.screenshot(page, "pages-settings-phone")
        self.assert_clean_console()

    def test_the_camera_preview_is_small_and_full_screen_puts_controls_and_captions_over_it(self):
        page = self.open()
        root = self.root(page)
        page.get_by_test_id("camera-button").click()
        preview = page.locator("[data-preview]")
        expect(page.get_by_test_id("video-preview")).to_be_visible()
        expect(root).to_have_attribute("data-state", "ready", timeout=10_000)
        for i in range(4):
            self.send(page, f"line {i}")
            self.expect_reply(page, f"You said: line {i}")
        box = preview.evaluate(BOX)
        assert box["height"] / PHONE["height"] < 0.25, box
        # The transcript scrolls below the preview, never under it.
        stage = page.locator("[data-stage]").evaluate(BOX)
        assert stage["top"] >= box["bottom"] - 0.5, (stage, box)
        last = self.model_turns(page).last
        assert last.evaluate(ON_TOP)
        self.assert_no_sideways_panning(page)
        self.screenshot(page, "pages-camera-pip-phone")

        button = page.get_by_test_id("fullscreen-button")
        button.click()
        expect(root).to_have_attribute("data-fullscreen", "true")
        expect(button).to_have_attribute("aria-pressed", "true")
        full = preview.evaluate(BOX)
        assert full["width"] >= PHONE["width"] - 1, full
        assert full["height"] >= PHONE["height"] - 1, full
        # The controls are over the video and can be used; the captions are the latest lines.
        for control in ("talk-button", "camera-button", "text-input", "send-button"):
            target = page.get_by_test_id(control)
            expect(target).to_be_visible()
            assert target.evaluate(ON_TOP), control
        expect(last).to_be_visible()
        assert last.evaluate(ON_TOP)
        shown = page.get_by_test_id("transcript").locator(":scope > .event:visible")
        assert shown.count() <= 3
        expect(page.get_by_test_id("transcript").get_by_text("line 0", exact=True)).to_be_hidden()
        self.send(page, "captions go on")
        self.expect_reply(page, "You said: captions go on")
        expect(self.model_turns(page).last).to_be_visible()
        self.screenshot(page, "pages-camera-fullscreen-phone")

        button.click()
        expect(root).not_to_have_attribute("data-fullscreen", "true")
        assert preview.evaluate(BOX)["height"] / PHONE["height"] < 0.25
        button.click()
        page.keyboard.press("Escape")
        expect(root).not_to_have_attribute("data-fullscreen", "true")
        # Turning the camera off leaves full screen too.
        button.click()
        page.get_by_test_id("camera-button").click()
        expect(root).not_to_have_attribute("data-fullscreen", "true")
        expect(page.get_by_test_id("video-preview")).to_be_hidden()
        self.assert_clean_console()

    def test_continue_shows_the_earlier_turns_before_any_new_one(self):
        page = self.open()
        root = self.root(page)
        self.send(page, "remember the plums")
        self.expect_reply(page, "You said: remember the plums")
        expect(self.model_turns(page).last).to_have_attribute("data-final", "true")
        conversation = root.get_attribute("data-conversation")
        page.get_by_test_id("talk-button").click()  # a session with the microphone, then stop
        page.get_by_test_id("talk-button").click()
        expect(root).to_have_attribute("data-state", "idle", timeout=10_000)

        page.goto(f"/conversations/{conversation}/")
        page.get_by_test_id("continue-link").click()
        expect(root).to_have_attribute("data-ready", "true")
        transcript = page.get_by_test_id("transcript")
        earlier = transcript.locator("[data-earlier='true']")
        expect(earlier.locator("[data-role='user'], .bubble--user").first).to_contain_text(
            "remember the plums"
        )
        expect(transcript.locator("[data-role='model'][data-earlier='true']")).to_contain_text(
            "You said: remember the plums"
        )
        expect(root).to_have_attribute("data-state", "idle")  # shown before any new turn
        self.send(page, "/history")
        self.expect_reply(page, "history: 1 user turns")
        assert root.get_attribute("data-conversation") == conversation
        self.screenshot(page, "pages-continue-phone")
        self.assert_clean_console()

    def test_the_remaining_minutes_are_shown_and_refreshed_when_a_session_ends(self):
        self.user.daily_seconds = 3600
        self.user.save()
        page = self.open()
        quota = page.get_by_test_id("quota-remaining")
        expect(quota).to_have_text(re.compile(r"^(60|59) min left today$"))
        self.send(page, "hello")
        self.expect_reply(page, "You said: hello")
        # Staff halve the allowance meanwhile: the server knows, the page's countdown not yet.
        self.user.daily_seconds = 1800
        self.user.save(update_fields=["daily_seconds"])
        page.get_by_test_id("talk-button").click()
        page.get_by_test_id("talk-button").click()
        expect(self.root(page)).to_have_attribute("data-state", "idle", timeout=10_000)
        expect(quota).to_have_text(re.compile(r"^(30|29) min left today$"), timeout=10_000)

    def test_the_chosen_microphone_and_camera_are_used_and_remembered(self):
        spy = (
            "(() => { const md = navigator.mediaDevices; const real = md.getUserMedia.bind(md);"
            " window.__asked = [];"
            " md.getUserMedia = (c) => { window.__asked.push(c); return real(c); }; })()"
        )
        context_page = self.new_page(self.user, viewport=PHONE)
        context_page.context.add_init_script(spy)
        page = context_page
        page.goto("/")
        expect(self.root(page)).to_have_attribute("data-ready", "true")
        # Permission first (the names and ids come with it), then the picker lists the devices.
        page.get_by_test_id("camera-button").click()
        expect(page.get_by_test_id("video-preview")).to_be_visible()
        page.get_by_test_id("camera-button").click()
        page.get_by_test_id("settings-button").click()
        mic = page.get_by_test_id("microphone-select")
        camera = page.get_by_test_id("camera-select")
        self.wait_until(
            page, "() => document.querySelector('[data-testid=camera-select]').options.length > 1"
        )
        self.wait_until(
            page,
            "() => document.querySelector('[data-testid=microphone-select]').options.length > 1",
        )
        mic_id = mic.locator("option").last.get_attribute("value")
        camera_id = camera.locator("option").last.get_attribute("value")
        assert mic_id
        assert camera_id
        mic.select_option(mic_id)
        camera.select_option(camera_id)
        page.get_by_role("button", name="Done").click()

        page.get_by_test_id("camera-button").click()
        expect(page.get_by_test_id("video-preview")).to_be_visible()
        page.get_by_test_id("talk-button").click()
        expect(page.get_by_test_id("mute-button")).to_be_enabled(timeout=10_000)
        asked = page.evaluate("() => window.__asked")
        video = [c["video"] for c in asked if c.get("video")]
        audio = [c["audio"] for c in asked if c.get("audio")]
        assert video[-1]["deviceId"] == {"ideal": camera_id}, video
        assert audio[-1]["deviceId"] == {"ideal": mic_id}, audio
        page.get_by_test_id("talk-button").click()

        page.reload()
        expect(self.root(page)).to_have_attribute("data-ready", "true")
        page.get_by_test_id("settings-button").click()
        expect(page.get_by_test_id("microphone-select")).to_have_value(mic_id)
        expect(page.get_by_test_id("camera-select")).to_have_value(camera_id)
        self.assert_clean_console()

    def test_standing_instructions_are_saved_from_settings(self):
        page = self.open()
        page.get_by_test_id("settings-button").click()
        field = page.get_by_label("Your standing instructions")
        field.fill("Call me Sam.")
        page.get_by_test_id("save-instructions").click()
        expect(page.get_by_test_id("instructions-status")).to_contain_text("Saved")
        self.user.refresh_from_db()
        assert self.user.standing_instructions == "Call me Sam."
        field.fill("x" * 1999 + "yz")  # the field stops at the cap
        assert len(field.input_value()) == 2000
        page.get_by_test_id("save-instructions").click()
        expect(page.get_by_test_id("instructions-status")).to_contain_text("Saved")
        self.user.refresh_from_db()
        assert len(self.user.standing_instructions) == 2000
        self.assert_clean_console()

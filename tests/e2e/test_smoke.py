"""A person logs in with the real form and finds the assistant, history and tokens pages."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.e2e.support import BrowserTestCase

pytestmark = pytest.mark.e2e


class AccountFlowTests(BrowserTestCase):
    def test_login_form_leads_to_the_assistant_page_in_a_phone_viewport(self):
        get_user_model().objects.create_user("alice", password="correct horse battery staple")
        page = self.new_page()
        page.goto("/")
        expect(page).to_have_url(f"{self.live_server_url}/accounts/login/?next=/")
        page.get_by_label("Login").fill("alice")
        page.get_by_label("Password", exact=False).first.fill("correct horse battery staple")
        page.get_by_role("button", name=re.compile("sign in", re.I)).click()
        expect(page.locator("[data-pastra]")).to_have_attribute("data-state", "idle")
        expect(page.get_by_test_id("talk-button")).to_be_visible()
        expect(page.get_by_test_id("emulator-badge")).to_be_visible()
        self.screenshot(page, "assistant-phone")
        assert not [c for c in self.console if c.startswith("pageerror")], self.console

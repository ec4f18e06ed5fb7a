"""Fuzz the Gemini-compatible socket (access token) over a real socket: hostile frames,
before and after setup, end in a clear close (Google's code and a reason) or leave a working
session; the server stays healthy and the user's slot is freed every time."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import examples, verdict
from tests.fuzz.runner import gemini_case
from tests.fuzz.shapes import gemini_frames

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(0), pytest.mark.slow]


def test_gemini_socket_ends_clearly_or_keeps_working(server, loop, alice, make_token):
    token = make_token(alice)

    @settings(max_examples=examples(1.0))
    @given(
        setup=st.sampled_from([True, True, True, False]),
        frames=st.lists(gemini_frames(), min_size=1, max_size=3),
    )
    def case(setup, frames):
        out = loop.run_until_complete(gemini_case(server, token, frames, setup=setup))
        verdict(server, alice, out, what=f"setup={setup} {frames!r}")

    case()
    out = loop.run_until_complete(gemini_case(server, token, [], setup=True))
    assert out.answered, out
    verdict(server, alice, out, what="the fresh session")

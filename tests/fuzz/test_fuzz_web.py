"""Fuzz /ws/live/ (session cookie + Origin) over a real socket: hostile frames, before and
after `start`, end in a clear close (a 4xxx code and a reason) or leave a working session;
the server stays healthy and the user's slot is freed every time (tests/fuzz/conftest.py)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import examples, verdict
from tests.fuzz.runner import web_case
from tests.fuzz.shapes import web_frames

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(0), pytest.mark.slow]


def _stop_sent(frames) -> bool:
    return any(f.kind == "text" and '"type": "stop"' in f.payload for f in frames)


def test_web_socket_ends_clearly_or_keeps_working(server, loop, alice, login_cookie):
    cookie = login_cookie(alice)

    @settings(max_examples=examples(1.0))
    @given(
        start=st.sampled_from([True, True, True, False]),
        frames=st.lists(web_frames(), min_size=1, max_size=3),
    )
    def case(start, frames):
        out = loop.run_until_complete(web_case(server, cookie, frames, start=start))
        verdict(server, alice, out, what=f"start={start} {frames!r}", stop_sent=_stop_sent(frames))

    case()
    # A fresh session for the same user works afterwards.
    out = loop.run_until_complete(web_case(server, cookie, [], start=True))
    assert out.answered, out
    verdict(server, alice, out, what="the fresh session")

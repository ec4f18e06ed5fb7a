"""The goAway handover planner (assistant/live/handover.py), table-driven: sequences of facts
and the decision after each. No socket, no clock: every step passes its own `now`."""

import pytest

from assistant.live.handover import HANDLE_WAIT_SECONDS, HandoverPlanner


def run(steps):
    """Apply (fact, args) steps; return (handover_now, deadline) after the last one."""
    planner = HandoverPlanner()
    pending = False
    for fact, *args in steps:
        if fact == "pending":
            pending = args[0]
        elif fact == "go_away":
            planner.go_away(args[0], args[1], calls_pending=pending)
        elif fact == "turn_complete":
            planner.turn_complete(args[0])
        elif fact == "due":
            assert planner.due(args[0]) is args[1], f"due({args[0]})"
        else:
            getattr(planner, fact)(*args)
        if fact != "go_away":
            planner.plan(calls_pending=pending)
    return planner.handover_now, planner.deadline


CASES = {
    # An idle session with a fresh handle hands over at once.
    "idle: at once": ([("go_away", 50.0, 100.0)], (True, 148.0)),
    # The deadline: timeLeft - 2 s, or 75 % of a short timeLeft (whichever is later).
    "reply running: waits for the deadline": (
        [("model_output",), ("go_away", 50.0, 100.0)],
        (False, 148.0),
    ),
    "short timeLeft: 75 % of it": ([("model_output",), ("go_away", 4.0, 100.0)], (False, 103.0)),
    "no timeLeft: at once at the latest": (
        [("model_output",), ("go_away", 0.0, 100.0)],
        (False, 100.0),
    ),
    # A reply due (the user ended a turn) is waited for.
    "user ended a turn: waits": (
        [("user_turn_ended",), ("go_away", 50.0, 100.0)],
        (False, 148.0),
    ),
    # A tool call of this connection pending is waited for.
    "tool call pending: waits": (
        [("pending", True), ("go_away", 50.0, 100.0)],
        (False, 148.0),
    ),
    "tool call answered, then at once": (
        [("pending", True), ("go_away", 50.0, 100.0), ("pending", False)],
        (True, 148.0),
    ),
    # At the boundary, the resumption update that follows turnComplete is waited for...
    "turn completes: waits for its handle": (
        [("model_output",), ("go_away", 50.0, 100.0), ("turn_complete", 110.0)],
        (False, 110.0 + HANDLE_WAIT_SECONDS),
    ),
    "its handle arrives: at once": (
        [
            ("model_output",),
            ("go_away", 50.0, 100.0),
            ("turn_complete", 110.0),
            ("handle_updated",),
        ],
        (True, 110.0 + HANDLE_WAIT_SECONDS),
    ),
    # ...but never past the goAway deadline.
    "handle wait never extends the deadline": (
        [("model_output",), ("go_away", 4.0, 100.0), ("turn_complete", 102.9)],
        (False, 103.0),
    ),
    # A handle that came before the goAway is fresh: turnComplete makes it stale again.
    "handle before turnComplete is not fresh": (
        [("handle_updated",), ("model_output",), ("turn_complete", 90.0), ("go_away", 50.0, 100.0)],
        (False, 90.0 + HANDLE_WAIT_SECONDS),
    ),
    # Without a goAway nothing is decided, whatever happens.
    "no goAway: never": (
        [("model_output",), ("turn_complete", 10.0), ("handle_updated",)],
        (False, None),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_handover_decisions(case):
    steps, expected = CASES[case]
    assert run(steps) == expected


@pytest.mark.parametrize(
    ("steps", "due_at", "expected"),
    [
        ([("model_output",), ("go_away", 10.0, 100.0)], 107.9, False),
        ([("model_output",), ("go_away", 10.0, 100.0)], 108.0, True),
        ([("go_away", 10.0, 100.0)], 200.0, False),  # already handing over: nothing to force
    ],
)
def test_the_deadline_forces_the_handover_once(steps, due_at, expected):
    planner = HandoverPlanner()
    for fact, *args in steps:
        if fact == "go_away":
            planner.go_away(*args, calls_pending=False)
        else:
            getattr(planner, fact)(*args)
    assert planner.due(due_at) is expected
    assert planner.due(due_at) is False  # once


def test_go_away_asks_for_a_timer_only_when_the_handover_waits():
    idle = HandoverPlanner()
    assert idle.go_away(50.0, 0.0, calls_pending=False) is False
    busy = HandoverPlanner()
    busy.model_output()
    assert busy.go_away(50.0, 0.0, calls_pending=False) is True


def test_plan_reports_an_earlier_deadline_so_the_timer_is_rearmed():
    planner = HandoverPlanner()
    planner.model_output()
    planner.go_away(50.0, 100.0, calls_pending=False)
    planner.turn_complete(110.0)
    assert planner.plan(calls_pending=False) is True  # 111 < 148
    assert planner.plan(calls_pending=False) is False  # unchanged now


def test_a_closed_connection_reports_a_cut_reply_and_starts_afresh():
    planner = HandoverPlanner()
    planner.model_output()
    planner.go_away(50.0, 100.0, calls_pending=False)
    planner.turn_complete(110.0)
    planner.model_output()
    assert planner.connection_closed() is True  # a reply was running: lost with it
    assert (planner.goaway_seen, planner.deadline, planner.handover_now) == (False, None, False)
    assert planner.handle_fresh  # the next connection resumes from the latest handle
    assert planner.connection_closed() is False
    # A turn the user ended is still owed a reply by the next connection.
    waiting = HandoverPlanner()
    waiting.user_turn_ended()
    waiting.connection_closed()
    assert waiting.awaiting_reply

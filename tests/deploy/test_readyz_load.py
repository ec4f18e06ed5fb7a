"""Issue 12, finding 9: readiness reflects the worker's health, not its load. With 20 live
sessions open on a real daphne worker over the real Redis channel layer, `/readyz` answers
200 (its channel-layer check used to wait behind the consumers' receives: 503)."""

import asyncio
import time

import httpx
import pytest

from tests.deploy.conftest import gemini_session, redis_env  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.usefixtures("settled"),
]

SESSIONS = 20


async def test_readyz_is_200_with_20_open_sessions(start_worker, redis_env, alice, make_token):  # noqa: F811
    from assistant.models import User

    worker = start_worker("readyz", **redis_env)
    tokens = []
    for index in range(SESSIONS // 2):  # two sessions per user (the default limit)
        user = await User.objects.acreate(username=f"load{index}")
        tokens += [await asyncio.to_thread(make_token, user)] * 2
    sockets = await asyncio.gather(*(gemini_session(worker, token) for token in tokens))
    async with httpx.AsyncClient(base_url=worker.base_url, timeout=10) as http:
        answers = []
        for _ in range(5):
            started = time.monotonic()
            response = await http.get("/readyz")
            answers.append((response.status_code, round(time.monotonic() - started, 3)))
        body = response.json()
    print(f"readyz with {SESSIONS} sessions: {answers}")
    await asyncio.gather(*(ws.close() for ws in sockets))
    assert [status for status, _ in answers] == [200] * 5, (answers, body)
    assert body["checks"]["channel_layer"]["ok"] is True
    assert max(seconds for _, seconds in answers) < 1.0, answers

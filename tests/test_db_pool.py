"""PostgreSQL connection pooling: the live path's database calls run concurrently on pooled
connections, and a forked child never touches the connections its parent goes on using."""

import asyncio
import os
import threading

import pytest
from django.db import connection

from assistant.live import db
from assistant.models import User

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_thread_connections"),
]


def test_postgres_runs_with_a_pool_and_live_calls_run_concurrently():
    assert connection.pool is not None
    assert db.concurrent_database()
    inside = []
    both_in = threading.Barrier(2, timeout=5)

    def work(name):
        inside.append(threading.current_thread().name)
        both_in.wait()  # two calls in flight at once, or this times out
        return User.objects.filter(username=name).exists()

    call = db.live_db(work)

    async def main():
        return await asyncio.gather(call("a"), call("b"))

    assert asyncio.run(main()) == [False, False]
    assert all(name.startswith("pastra-db") for name in inside)
    assert len(set(inside)) == 2


def test_a_forked_child_queries_on_its_own_connections_while_the_parent_goes_on():
    User.objects.create_user("parent")
    assert User.objects.count() == 1  # the parent holds a pooled connection now
    pid = os.fork()
    if pid == 0:  # the child: its own pool, its own connections
        code = 1
        try:
            code = 0 if all(User.objects.count() == 1 for _ in range(50)) else 2
        finally:
            os._exit(code)
    for i in range(50):  # meanwhile the parent uses its connection: no crossed replies
        assert User.objects.filter(username="parent").count() == 1, i
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    User.objects.create_user("after")
    assert User.objects.count() == 2

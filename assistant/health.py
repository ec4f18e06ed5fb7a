"""Liveness and readiness endpoints for load balancers and orchestrators (JSON)."""

import asyncio
import hmac
import logging
import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from assistant.metrics import REGISTRY

logger = logging.getLogger(__name__)

PING_SECONDS = 2.0  # the channel layer's Redis must answer a PING within this


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _check_channel_layer() -> None:
    """The layer's health, not its load. On Redis: a PING to each host on a connection of
    its own with a short timeout (a round trip through the layer waits behind every open
    session's receive on the same pool, and timed out with 3 sessions open). In memory: a
    round trip."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    hosts = getattr(layer, "hosts", None)
    if hosts and all(isinstance(host, dict) and host.get("address") for host in hosts):
        for host in hosts:
            await _ping_redis(host)
        return
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("channel layer returned a different message")


async def _ping_redis(host: dict) -> None:
    from redis import asyncio as aioredis

    options = {k: v for k, v in host.items() if k not in ("address", "master_name", "sentinels")}
    options.update(socket_timeout=PING_SECONDS, socket_connect_timeout=PING_SECONDS)
    client = aioredis.Redis.from_url(host["address"], **options)
    try:
        if not await client.ping():
            raise RuntimeError("Redis did not answer PING")
    finally:
        await client.aclose()


async def _timed(check, limit: float) -> dict:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            await check()
    except Exception as exc:
        logger.warning("readiness check %s failed: %s", check.__name__, type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


@never_cache
async def readyz(request):
    """503 unless the database and the channel layer answer and an upstream is configured."""
    checks = {
        "database": await _timed(sync_to_async(_check_database), 3.0),
        "channel_layer": await _timed(_check_channel_layer, 3.0),
        "upstream": {
            "ok": True,
            "kind": "emulator" if settings.PASTRA_UPSTREAM_IS_EMULATOR else "gemini",
        },
    }
    ready = all(c["ok"] for c in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@never_cache
def metrics(request):
    """Prometheus text format; for staff sessions or `Authorization: Bearer <metrics token>`."""
    token = settings.PASTRA_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    bearer_ok = bool(token) and hmac.compare_digest(header.encode(), f"Bearer {token}".encode())
    if not (bearer_ok or (request.user.is_authenticated and request.user.is_staff)):
        return JsonResponse({"error": "staff login or metrics token required"}, status=403)
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)

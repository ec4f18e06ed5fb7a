"""The MCP tools of one session: which servers are enabled for the user, their cached tool
listings, and each listed tool as a `Tool` the registry declares and runs like a built-in one.

At session start (`for_user`): the servers enabled for the user, from a snapshot of the server
table each process reads at most once per `PASTRA_MCP_CACHE_SECONDS` (a connect adds no
database read: docs/connect-profile.md; staff's edits in /admin/ reset it in that process),
then each server's listing from the cache (same TTL), or, on a miss, listed now, waiting at most
`PASTRA_MCP_LIST_TIMEOUT_SECONDS`. A server that is slower than that, down, or refusing is
left out of this session (`SessionTools.unavailable` names it, and the UI says so); a slow
listing goes on in the background, bounded by the server's timeout, and fills the cache for the
next session. A failed listing is remembered for FAILURE_SECONDS so a down server costs a
session start nothing. No round trip per turn: calls go to the server, listings never do.

A server is enabled for a user when it is `enabled` and names neither users nor groups (all
users), or names that user or one of the user's groups. Of its tools, those in its `tools`
field (all when empty) are declared, under `mcp_schema.namespaced` names; a tool whose schema
the Live API would refuse, or whose name collides with another of its tools, is left out and
said in the server's `status` in /admin/ (written when a listing's outcome changes).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from assistant.live.db import live_db
from assistant.tools import mcp_client, mcp_schema, mcp_secret
from assistant.tools.base import Behavior, Tool, ToolError

logger = logging.getLogger(__name__)

FAILURE_SECONDS = 15.0


@dataclass(frozen=True)
class ServerConfig:
    id: int
    endpoint: mcp_client.Endpoint
    enabled_tools: frozenset[str] | None
    version: str  # changes whenever staff edit the server: a new cache key
    status: str = ""
    problem: str = ""  # a configuration problem (unreadable secret): never contacted


@dataclass(frozen=True)
class Listing:
    tools: tuple[Tool, ...] = ()
    rows: tuple[dict, ...] = ()  # every listed tool, for /admin/
    error: str = ""

    def status(self) -> str:
        if self.error:
            return self.error
        refused = [f"{r['tool']}: {r['refused']}" for r in self.rows if r.get("refused")]
        text = f"{len(self.tools)} of {len(self.rows)} tools declared."
        return text + ("".join(f" Left out {line}." for line in refused) if refused else "")


@dataclass(frozen=True)
class SessionTools:
    tools: dict[str, Tool] = field(default_factory=dict)
    unavailable: tuple[str, ...] = ()


_cache: dict[tuple[int, str], tuple[float, Listing]] = {}
_inflight: dict[tuple[int, str], asyncio.Task] = {}
# (expiry, [(config, the user ids it is enabled for, or None for everyone)])
_servers: tuple[float, list[tuple[ServerConfig, frozenset[int] | None]]] | None = None
_saved_status: dict[int, str] = {}


def clear_cache() -> None:
    """Forget every listing and the server snapshot (staff changed a server; tests)."""
    global _servers
    _cache.clear()
    _inflight.clear()
    _saved_status.clear()
    _servers = None


def config_of(server) -> ServerConfig:
    """A model row as the client needs it (the secret read here, never stored elsewhere)."""
    problem, secret = "", ""
    try:
        if server.secret_file:
            secret = mcp_secret.read_file(server.secret_file)
        else:
            secret = mcp_secret.unseal(server.secret_sealed)
    except ValueError as exc:
        problem = f"The {server.name} tool server is not used: {exc}."
    endpoint = mcp_client.Endpoint(
        name=server.name,
        url=server.url,
        secret=secret,
        timeout=float(server.timeout_seconds),
        allow_private=server.allow_private,
    )
    return ServerConfig(
        id=server.pk,
        endpoint=endpoint,
        enabled_tools=server.enabled_tool_names(),
        version=server.updated_at.isoformat() if server.updated_at else "",
        status=server.status,
        problem=problem,
    )


def load_servers() -> list[tuple[ServerConfig, frozenset[int] | None]]:
    """The enabled servers, each with the ids of the users it is enabled for (its users and
    the members of its groups; None when it names neither: everyone). Three reads."""
    from assistant.models import MCPServer, User

    servers = list(MCPServer.objects.filter(enabled=True))
    ids = [server.pk for server in servers]
    users: dict[int, set[int]] = {}
    for server_id, user_id in MCPServer.users.through.objects.filter(
        mcpserver_id__in=ids
    ).values_list("mcpserver_id", "user_id"):
        users.setdefault(server_id, set()).add(user_id)
    members = User.groups.through.objects.filter(
        group_id__in=MCPServer.groups.through.objects.filter(mcpserver_id__in=ids).values(
            "group_id"
        )
    ).values_list("group_id", "user_id")
    by_group: dict[int, set[int]] = {}
    for group_id, user_id in members:
        by_group.setdefault(group_id, set()).add(user_id)
    groups: dict[int, set[int]] = {}
    for server_id, group_id in MCPServer.groups.through.objects.filter(
        mcpserver_id__in=ids
    ).values_list("mcpserver_id", "group_id"):
        groups.setdefault(server_id, set()).update(by_group.get(group_id, ()))
        users.setdefault(server_id, set())
    return [
        (config_of(server), frozenset(users[server.pk] | groups.get(server.pk, set())))
        if server.pk in users
        else (config_of(server), None)
        for server in servers
    ]


def configs_for_user(user_id: int) -> list[ServerConfig]:
    """The servers enabled for this user (sync; reads the table when the snapshot expired)."""
    global _servers
    now = time.monotonic()
    if _servers is None or _servers[0] <= now:
        _servers = (now + float(settings.PASTRA_MCP_CACHE_SECONDS), load_servers())
    return [config for config, allowed in _servers[1] if allowed is None or user_id in allowed]


async def configs_for(user_id: int) -> list[ServerConfig]:
    if _servers is not None and _servers[0] > time.monotonic():
        return configs_for_user(user_id)  # no database work: no thread hop
    return await live_db(configs_for_user)(user_id)


def build(config: ServerConfig, listed: list[mcp_client.Listed]) -> Listing:
    """The declared tools and the admin rows of one listing (pure)."""
    tools: list[Tool] = []
    rows: list[dict] = []
    taken: set[str] = set()
    server = config.endpoint.name
    for item in listed:
        row = {"tool": item.name, "name": mcp_schema.namespaced(server, item.name)}
        row["enabled"] = config.enabled_tools is None or item.name in config.enabled_tools
        try:
            parameters = mcp_schema.to_gemini(item.input_schema)
            if row["name"] in taken:
                raise mcp_schema.SchemaRefused(f"its name {row['name']} is taken by another tool")
        except mcp_schema.SchemaRefused as exc:
            row["refused"] = str(exc)
            rows.append(row)
            continue
        rows.append(row)
        taken.add(row["name"])
        if row["enabled"]:
            tools.append(_tool(config, item, row["name"], parameters or {}))
    return Listing(tuple(tools), tuple(rows))


def _tool(config: ServerConfig, item: mcp_client.Listed, name: str, parameters: dict) -> Tool:
    description = (item.description or item.name)[: mcp_schema.MAX_DESCRIPTION]
    return Tool(
        name=name,
        description=f"{description} (from the {config.endpoint.name} tool server)",
        parameters=parameters,
        handler=functools.partial(_call, config.endpoint, item.name),
        behavior=Behavior.BLOCKING,
        source=config.endpoint.name,
        timeout_seconds=config.endpoint.timeout,
    )


async def _call(endpoint: mcp_client.Endpoint, tool: str, **arguments) -> dict:
    return await mcp_client.call_tool(endpoint, tool, arguments)


async def list_now(config: ServerConfig) -> Listing:
    """List the server's tools now (cache bypassed, cache filled)."""
    if config.problem:
        listing = Listing(error=config.problem)
    else:
        try:
            listing = build(config, await mcp_client.list_tools(config.endpoint))
        except ToolError as exc:
            listing = Listing(error=f"{exc}.")
    ttl = FAILURE_SECONDS if listing.error else float(settings.PASTRA_MCP_CACHE_SECONDS)
    _cache[config.id, config.version] = (time.monotonic() + ttl, listing)
    return listing


async def listing(config: ServerConfig, *, wait: float) -> Listing:
    """The cached listing, or one made now within `wait` seconds (TimeoutError otherwise;
    the listing goes on in the background and fills the cache)."""
    key = (config.id, config.version)
    cached = _cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    task = _inflight.get(key)
    if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.get_running_loop().create_task(list_now(config), name=f"mcp list {key[0]}")
        _inflight[key] = task
        task.add_done_callback(lambda done: _forget(key, done))
    async with asyncio.timeout(wait):
        return await asyncio.shield(task)


def _forget(key: tuple[int, str], task: asyncio.Task) -> None:
    if _inflight.get(key) is task:
        del _inflight[key]


async def for_user(user_id: int) -> SessionTools:
    """The MCP tools of a session of this user; never raises (but CancelledError)."""
    try:
        configs = await configs_for(user_id)
    except Exception:
        logger.exception("user=%s: the MCP servers could not be read", user_id)
        return SessionTools()
    if not configs:
        return SessionTools()
    wait = float(settings.PASTRA_MCP_LIST_TIMEOUT_SECONDS)
    outcomes = await asyncio.gather(
        *(listing(config, wait=wait) for config in configs), return_exceptions=True
    )
    tools: dict[str, Tool] = {}
    unavailable: list[str] = []
    changed: list[tuple[int, Listing]] = []
    for config, outcome in zip(configs, outcomes, strict=True):
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
        if isinstance(outcome, TimeoutError):
            late = (
                f"The {config.endpoint.name} tool server did not list its tools within {wait:g} s."
            )
            outcome = Listing(error=late)
        elif isinstance(outcome, BaseException):
            logger.error("mcp server %s: %r", config.endpoint.name, outcome)
            unavailable.append(config.endpoint.name)
            continue
        if outcome.status() != _saved_status.get(config.id, config.status):
            changed.append((config.id, outcome))
        if outcome.error:
            unavailable.append(config.endpoint.name)
        for tool in outcome.tools:
            tools.setdefault(tool.name, tool)
    if changed:
        try:
            await live_db(save_status)(changed)
        except Exception:
            logger.exception("mcp server status not saved")
    return SessionTools(tools, tuple(unavailable))


def save_status(changed: list[tuple[int, Listing]]) -> None:
    """Tell staff what the last listing found (/admin/ shows it)."""
    from assistant.models import MCPServer

    now = timezone.now()
    for server_id, outcome in changed:
        _saved_status[server_id] = outcome.status()
        fields = {"status": outcome.status()[:2000], "checked_at": now}
        if not outcome.error:
            fields["listed_tools"] = list(outcome.rows)
        # .update(): staff's updated_at (the cache key) is left alone.
        MCPServer.objects.filter(pk=server_id).update(**fields)

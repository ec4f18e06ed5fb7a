"""Staff's side: `manage.py add_mcp_server` (SPEC section 5), the MCP server form in /admin/
(SSRF guard, write-only secret, tools listed on save) and the tool registry with its figures
from the recorded calls."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from assistant.models import Conversation, ConversationEvent, MCPServer
from assistant.tools import mcp_secret

pytestmark = pytest.mark.django_db(transaction=True)

DECLARED = ["demo__add", "demo__greet", "demo__fail", "demo__sleep", "demo__die"]


def add_server(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("add_mcp_server", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "mcp-secret"
    path.write_text("s3cret\n")
    return str(path)


def test_the_command_registers_a_server_and_prints_its_tools(mcp_server, secret_file):
    out, err = add_server("demo", mcp_server.url, "--secret-file", secret_file, "--allow-private")
    assert out.splitlines() == DECLARED
    assert "left out mail: the input schema uses shared definitions ($defs)" in err
    server = MCPServer.objects.get(name="demo")
    assert (server.secret_file, server.allow_private, server.secret_sealed) == (
        secret_file,
        True,
        "",
    )
    # Run again: the same server is updated (only the listed tools enabled now).
    out, err = add_server(
        "demo", mcp_server.url, "--secret-file", secret_file, "--allow-private",
        "--tools", "add,greet",
    )  # fmt: skip
    assert out.splitlines() == ["demo__add", "demo__greet"]
    assert "not enabled: fail" in err
    assert MCPServer.objects.count() == 1


def test_the_command_refuses_a_loopback_url_without_allow_private(mcp_server, secret_file):
    with pytest.raises(CommandError, match="use --allow-private") as refused:
        add_server("demo", mcp_server.url, "--secret-file", secret_file)
    assert "private or local and not allowed" in str(refused.value)
    assert not MCPServer.objects.exists()
    with pytest.raises(CommandError, match="refused"):
        add_server("meta", "http://169.254.169.254/mcp", "--allow-private")  # resolves nothing


def test_two_servers_whose_tools_would_share_names_are_refused(mcp_server, secret_file):
    add_server("my-files", mcp_server.url, "--secret-file", secret_file, "--allow-private")
    with pytest.raises(CommandError, match="Another server's tools would have the same names"):
        add_server("my_files", mcp_server.url, "--secret-file", secret_file, "--allow-private")
    with pytest.raises(CommandError, match="must start with a letter"):
        add_server("9lives", mcp_server.url, "--allow-private")


def test_the_command_says_when_the_server_cannot_be_listed(mcp_server):
    with pytest.raises(CommandError, match="demo is registered, but The demo tool server refused"):
        add_server("demo", mcp_server.url, "--allow-private")  # no secret: 401


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def form_data(url: str, **fields) -> dict:
    data = {
        "name": "demo",
        "url": url,
        "secret": "",
        "secret_file": "",
        "tools": "",
        "timeout_seconds": "8",
        "enabled": "on",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_the_admin_form_refuses_a_private_address_unless_allowed(staff_client, mcp_server):
    add = reverse("admin:assistant_mcpserver_add")
    page = staff_client.post(add, form_data(mcp_server.url, secret="s3cret"))
    assert page.status_code == 200
    assert "Refused: that address is private or local and not allowed." in page.text
    assert not MCPServer.objects.exists()
    done = staff_client.post(
        add, form_data(mcp_server.url, secret="s3cret", allow_private="on"), follow=True
    )
    assert "Tool server demo: 5 of 6 tools declared. Left out mail:" in done.text
    server = MCPServer.objects.get()
    assert mcp_secret.unseal(server.secret_sealed) == "s3cret"
    assert "s3cret" not in server.secret_sealed
    change = staff_client.get(reverse("admin:assistant_mcpserver_change", args=[server.pk]))
    assert "s3cret" not in change.text  # write-only
    assert "stored (encrypted)" in change.text
    assert "<code>demo__add</code>" in change.text
    assert "no: the input schema uses shared definitions ($defs)" in change.text


def record(conversation, seq: int, name: str, ok: bool, ms: int, response=None):
    ConversationEvent.objects.create(
        conversation=conversation,
        seq=seq,
        kind=ConversationEvent.Kind.TOOL_RESULT,
        text=name,
        data={"id": f"c{seq}", "name": name, "ok": ok, "response": response or {}},
        duration_ms=ms,
        created_at=timezone.now() - dt.timedelta(minutes=seq),
    )


def test_the_registry_shows_each_tool_its_source_and_figures(staff_client, alice, settings):
    settings.PASTRA_TOOLS = ["get_weather", "web_search", "calculate"]
    MCPServer.objects.create(
        name="demo",
        url="https://mcp.example/mcp",
        listed_tools=[
            {"tool": "add", "name": "demo__add", "enabled": True},
            {"tool": "mail", "name": "demo__mail", "enabled": True, "refused": "uses $ref"},
        ],
    )
    conversation = Conversation.objects.create(user=alice)
    for seq, ms in enumerate(range(10, 210, 10), start=1):  # 20 calls: 10 ms ... 200 ms
        record(conversation, seq, "get_weather", ok=seq != 3, ms=ms)
    record(conversation, 30, "get_weather", ok=False, ms=5, response={"error": "cancelled"})
    record(conversation, 31, "demo__add", ok=True, ms=40)
    old = timezone.now() - dt.timedelta(days=40)
    ConversationEvent.objects.filter(seq=31).update(created_at=old)  # outside the window
    page = staff_client.get(reverse("admin:assistant_tool_registry"))
    assert page.status_code == 200
    rows = {row["name"]: row for row in page.context["rows"]}
    assert rows["get_weather"] == {
        "name": "get_weather",
        "source": "built-in",
        "enabled": True,
        "note": "",
        "calls": 20,
        "cancelled": 1,
        "error_rate": "5%",
        "p95": "190 ms",
    }
    assert rows["calculate"]["note"] == "declared only to models without code execution"
    assert rows["get_stock_price"]["enabled"] is False
    assert (rows["demo__add"]["source"], rows["demo__add"]["calls"]) == ("MCP: demo", 0)
    assert (rows["demo__mail"]["enabled"], rows["demo__mail"]["note"]) == (False, "uses $ref")
    assert '<tr data-tool="demo__mail">' in page.text


def test_the_registry_is_for_staff_only(client, alice):
    client.force_login(alice)
    page = client.get(reverse("admin:assistant_tool_registry"))
    assert page.status_code == 302

"""Staff's side of the tools in /admin/: MCP tool servers (add, edit, list their tools now)
and the tool registry (every tool, where it comes from, whether it is on, and its calls, error
rate and p95 time from the recorded calls). `register(site)` is called from assistant/admin.py.

The bearer secret is write-only: the form takes a new one (sealed before it is stored) or a
file path, and never shows a stored one. Saving a server checks its URL with the SSRF guard
(a private or loopback address needs "Allow private") and lists its tools at once, so staff see
which tools are declared and which are left out, and why (a schema the Live API would refuse).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from assistant.models import MCPServer
from assistant.tools import mcp_secret, mcp_tools, registry, ssrf, stats


class MCPServerForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text="The Streamable HTTP endpoint, e.g. https://host/mcp.",
    )
    secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Bearer secret, stored encrypted; leave empty to keep the current one.",
    )
    clear_secret = forms.BooleanField(required=False, help_text="Remove the stored secret.")

    class Meta:
        model = MCPServer
        fields = [
            "name",
            "url",
            "secret",
            "clear_secret",
            "secret_file",
            "tools",
            "users",
            "groups",
            "timeout_seconds",
            "allow_private",
            "enabled",
        ]
        widgets = {"tools": forms.TextInput(attrs={"size": 60})}
        help_texts = {
            "users": "Who gets its tools; leave users and groups empty for every user.",
            "groups": "Members of these groups get its tools too.",
        }

    def clean(self):
        data = super().clean()
        url, allow = data.get("url"), bool(data.get("allow_private"))
        if url:
            try:
                async_to_sync(ssrf.check_url)(url, allow_private=allow)
            except ssrf.UnsafeURLError as exc:
                hint = "" if allow else " Tick “Allow private” if staff run it on such a network."
                self.add_error("url", f"Refused: {exc}.{hint}")
        return data

    def save(self, commit=True):
        server = super().save(commit=False)
        if self.cleaned_data.get("clear_secret"):
            server.secret_sealed = ""
        elif self.cleaned_data.get("secret"):
            server.secret_sealed = mcp_secret.seal(self.cleaned_data["secret"])
        if commit:
            server.save()
            self.save_m2m()
        return server


def check_now(server: MCPServer) -> mcp_tools.Listing:
    """List the server's tools now and store what staff see (status, tool table)."""
    mcp_tools.clear_cache()
    listing = async_to_sync(mcp_tools.list_now)(mcp_tools.config_of(server))
    mcp_tools.save_status([(server.pk, listing)])
    server.refresh_from_db()
    return listing


class MCPServerAdmin(admin.ModelAdmin):
    form = MCPServerForm
    list_display = ("name", "url", "enabled", "tool_count", "checked_at", "short_status")
    list_filter = ("enabled",)
    search_fields = ("name", "url")
    filter_horizontal = ("users", "groups")
    readonly_fields = ("secret_stored", "status", "tool_table", "checked_at")
    actions = ["list_tools_now"]
    change_list_template = "admin/assistant/mcpserver/change_list.html"

    @admin.display(description="tools declared")
    def tool_count(self, server: MCPServer) -> str:
        rows = server.listed_tools or []
        declared = [r for r in rows if r.get("enabled") and not r.get("refused")]
        return f"{len(declared)} of {len(rows)}"

    @admin.display(description="status")
    def short_status(self, server: MCPServer) -> str:
        return server.status[:120]

    @admin.display(description="secret")
    def secret_stored(self, server: MCPServer) -> str:
        if server.secret_file:
            return f"read from {server.secret_file}"
        return "stored (encrypted)" if server.secret_sealed else "none"

    @admin.display(description="tools")
    def tool_table(self, server: MCPServer):
        rows = server.listed_tools or []
        if not rows:
            return "Not listed yet."
        return format_html(
            "<table><tr><th>tool</th><th>the model sees</th><th>declared</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                (
                    (
                        r.get("tool", ""),
                        r.get("name", ""),
                        f"no: {r['refused']}"
                        if r.get("refused")
                        else ("yes" if r.get("enabled") else "no (not enabled)"),
                    )
                    for r in rows
                ),
            ),
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self._report(request, obj, check_now(obj))

    @admin.action(description="List tools now")
    def list_tools_now(self, request, queryset):
        for server in queryset:
            self._report(request, server, check_now(server))

    def _report(self, request, server: MCPServer, listing: mcp_tools.Listing) -> None:
        refused = any(r.get("refused") for r in listing.rows)
        level = messages.ERROR if listing.error else (messages.WARNING if refused else None)
        self.message_user(
            request, f"Tool server {server.name}: {listing.status()}", level or messages.INFO
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("registry/", view(self.registry_view), name="assistant_tool_registry"),
            *super().get_urls(),
        ]

    def registry_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Tool registry",
            "rows": registry_rows(),
            "servers_url": reverse("admin:assistant_mcpserver_changelist"),
        }
        return TemplateResponse(request, "admin/assistant/mcpserver/registry.html", context)


def registry_rows() -> list[dict]:
    """One row per tool: built-in ones, then each server's, then names only the records know."""
    figures = stats.tool_stats()
    rows: list[dict] = []
    for tool in registry.TOOLS.values():
        on = tool.is_enabled()
        note = "" if on else "off (PASTRA_TOOLS, or its key or URL is not set)"
        if on and tool.without_code_execution:
            note = "declared only to models without code execution"
        rows.append(_row(tool.name, "built-in", on, note, figures))
    for server in MCPServer.objects.order_by("name"):
        for item in server.listed_tools or []:
            on = bool(server.enabled and item.get("enabled") and not item.get("refused"))
            note = item.get("refused") or ("" if on else "not enabled")
            rows.append(_row(item.get("name", ""), f"MCP: {server.name}", on, note, figures))
    known = {row["name"] for row in rows}
    for name in sorted(set(figures) - known):
        source = "recorded only (a client's function, or no longer offered)"
        rows.append(_row(name, source, False, "", figures))
    return rows


def _row(name: str, source: str, enabled: bool, note: str, figures) -> dict:
    figure = figures.get(name, stats.ToolStats())
    rate = figure.error_rate
    return {
        "name": name,
        "source": source,
        "enabled": enabled,
        "note": note,
        "calls": figure.calls,
        "cancelled": figure.cancelled,
        "error_rate": "—" if rate is None else f"{rate:.0%}",
        "p95": "—" if figure.p95_ms is None else f"{figure.p95_ms} ms",
    }


def register(site: admin.AdminSite) -> None:
    site.register(MCPServer, MCPServerAdmin)

"""Staff review: conversations (read-only, exportable, live sessions can be ended), users with
their quota overrides and today's live time (their live sessions can be ended), the daily
usage ledger (read-only), access and ephemeral tokens (read-only, revocable; the hash is
never shown), and the MCP tool servers with the tool registry (assistant/tools/admin.py)."""

import csv
import json
import logging

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from assistant import control, live_view, selectors, services
from assistant.models import AccessToken, Conversation, DailyUsage, EphemeralToken, User
from assistant.tools import admin as tools_admin

logger = logging.getLogger(__name__)

CSV_FIELDS = [
    "conversation",
    "user",
    "title",
    "model",
    "client_kind",
    "status",
    "started_at",
    "ended_at",
    "seq",
    "turn",
    "kind",
    "text",
    "data",
    "duration_ms",
    "created_at",
]


def _csv_cell(value) -> str:
    """Neutralise spreadsheet formulas in user-controlled text (CSV injection)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _json_text(data) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True) if data else ""


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def signal_end(modeladmin, request, targets) -> None:
    """Staff's "end sessions" actions: ask the workers to end each target's live sessions
    (`targets`: log label, `control.end_sessions` filter, what the failure message names) and
    say how many were signalled; stop at the first target the channel layer cannot reach."""
    reason = f"Ended by an administrator ({request.user.get_username()})"
    signalled = 0
    for label, which, named in targets:
        try:
            signalled += control.end_sessions(**which, reason=reason)
        except Exception:
            logger.exception("%s could not signal live.end", label)
            modeladmin.message_user(
                request, f"Could not reach the live workers{named}; try again.", messages.ERROR
            )
            return
    noun = "session" if signalled == 1 else "sessions"
    modeladmin.message_user(request, f"Signalled {signalled} live {noun} to end.", messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff read these and act on them only through explicit actions (revoke): never add,
    edit or delete a row by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "user",
        "started_at",
        "status",
        "model",
        "client_kind",
        "duration",
        "live_seconds",
        "total_tokens",
        "has_tool_calls",
        "has_errors",
    )
    list_filter = (
        ("user", admin.RelatedOnlyFieldListFilter),
        "status",
        "model",
        "client_kind",
        "has_tool_calls",
        "has_errors",
        "started_at",
    )
    list_select_related = ("user",)
    date_hierarchy = "started_at"
    search_fields = ("id", "title", "user__username", "events__text")
    search_help_text = "Searches titles, usernames, conversation ids and transcript text."
    list_per_page = 50
    actions = ("export_json", "export_csv", "end_live_sessions")
    # Never show the upstream resumption handle: it is a server-side credential of sorts.
    fieldsets = (
        (None, {"fields": ("id", "user", "title", "status", "end_reason")}),
        (
            "Session",
            {"fields": ("model", "voice", "client_kind", "started_at", "ended_at", "duration")},
        ),
        (
            "Usage",
            {
                "fields": (
                    "live_seconds",
                    "prompt_tokens",
                    "response_tokens",
                    "total_tokens",
                    "has_tool_calls",
                    "has_errors",
                )
            },
        ),
        ("Timeline", {"fields": ("timeline",)}),
    )
    # Staff review records; they do not edit them.
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    class Media:
        css = {"all": ["css/admin.css"]}

    # Review only: conversations come from the live path; deletion stays for removal requests.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    # A live conversation's session is ended first (as the owner's delete does), then the
    # rows are locked and deleted (services.conversations_delete).
    def delete_model(self, request, obj):
        self.delete_queryset(request, Conversation.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):  # also "Delete selected"
        live = queryset.filter(status=Conversation.Status.ACTIVE).values_list("pk", flat=True)
        control.end_conversations(list(live), reason=control.REASON_DELETED_BY_STAFF)
        services.conversations_delete(queryset)

    @admin.display(description="Duration")
    def duration(self, obj):
        return format_duration(obj.duration_seconds)

    @admin.display(description="Live seconds", ordering="seconds_used")
    def live_seconds(self, obj):
        return f"{obj.seconds_used:.1f}"

    @admin.display(description="Events")
    def timeline(self, obj):
        events = selectors.conversation_events(conversation=obj)
        rows = format_html_join(
            "",
            "<tr class='pastra-timeline__{}'><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    e.role,
                    e.seq,
                    e.turn,
                    e.created_at.strftime("%H:%M:%S"),
                    e.get_kind_display(),
                    e.text,
                    _json_text(e.data),
                    "" if e.duration_ms is None else f"{e.duration_ms} ms",
                )
                for e in events
            ),
        )
        if not rows:
            return "No events recorded."
        return format_html(
            "<table class='pastra-timeline'><thead><tr><th>#</th><th>Turn</th><th>Time</th>"
            "<th>Kind</th><th>Text</th><th>Data</th><th>Duration</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Export selected conversations as JSON")
    def export_json(self, request, queryset):
        data = [
            selectors.conversation_export(conversation=c)
            for c in queryset.select_related("user").order_by("started_at")
        ]
        response = JsonResponse(
            {"conversations": data}, json_dumps_params={"indent": 2, "ensure_ascii": False}
        )
        response["Content-Disposition"] = 'attachment; filename="pastra-conversations.json"'
        return response

    @admin.action(description="Export selected conversations as CSV (one row per event)")
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="pastra-conversations.csv"'
        writer = csv.writer(response)
        writer.writerow(CSV_FIELDS)
        for conversation in queryset.select_related("user").order_by("started_at"):
            record = selectors.conversation_export(conversation=conversation)
            head = [
                record["id"],
                record["user"],
                record["title"],
                record["model"],
                record["client_kind"],
                record["status"],
                record["started_at"],
                record["ended_at"] or "",
            ]
            for e in record["events"]:
                tail = [e["seq"], e["turn"], e["kind"], e["text"], _json_text(e["data"])]
                tail += [e["duration_ms"], e["created_at"]]
                writer.writerow([_csv_cell(v) for v in head + tail])
        return response

    # --- live view (assistant/live_view.py, static/staff/admin-live.js) --------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<uuid:object_id>/live/",
                view(self.live_view),
                name="assistant_conversation_live",
            ),
            path(
                "<uuid:object_id>/end-session/",
                view(require_POST(self.end_session_view)),
                name="assistant_conversation_end_session",
            ),
            *super().get_urls(),
        ]

    def _viewable(self, request, object_id) -> Conversation:
        conversation = Conversation.objects.select_related("user").filter(pk=object_id).first()
        if conversation is None:
            raise Http404("No such conversation.")
        if not self.has_view_permission(request, conversation):
            raise PermissionDenied
        return conversation

    def live_view(self, request, object_id):
        """The timeline so far, then new events as they are recorded (on any worker)."""
        conversation = self._viewable(request, object_id)
        rows = [
            live_view.event_row(e) for e in selectors.conversation_events(conversation=conversation)
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": conversation,
            "title": f"Live: {conversation}",
            "events": rows,
            "last_seq": rows[-1]["seq"] if rows else 0,
            "socket_path": f"/ws/admin/conversations/{conversation.pk}/",
            "is_active": conversation.status == Conversation.Status.ACTIVE,
        }
        return TemplateResponse(request, "admin/assistant/conversation/live.html", context)

    def end_session_view(self, request, object_id):
        """The live view's "End session" button: `live.end` to whichever worker holds it."""
        conversation = self._viewable(request, object_id)
        try:
            signalled = control.end_sessions(
                conversation_id=conversation.pk,
                reason=f"Ended by an administrator ({request.user.get_username()})",
            )
        except Exception:
            logger.exception("conv=%s could not signal live.end", conversation.pk)
            self.message_user(
                request, "Could not reach the live workers; try again.", messages.ERROR
            )
        else:
            if signalled:
                self.message_user(request, "Signalled the live session to end.", messages.SUCCESS)
            else:
                self.message_user(request, "This conversation is not live.", messages.WARNING)
        return HttpResponseRedirect(
            reverse("admin:assistant_conversation_live", args=[conversation.pk])
        )

    @admin.action(description="End live session")
    def end_live_sessions(self, request, queryset):
        active = queryset.filter(status=Conversation.Status.ACTIVE)
        signal_end(
            self,
            request,
            ((f"conv={c.pk}", {"conversation_id": c.pk}, f" for {c}") for c in active),
        )


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = (
        "username",
        "email",
        "is_active",
        "is_staff",
        "max_sessions",
        "daily_seconds",
        "live_today",
        "last_login",
        "date_joined",
    )
    actions = ("end_live_sessions",)
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (
            "Quotas",
            {
                "fields": ("max_sessions", "daily_seconds"),
                "description": "Leave empty to use the deployment's defaults.",
            },
        ),
    )

    def get_queryset(self, request):
        today = DailyUsage.objects.filter(user=OuterRef("pk"), day=timezone.localdate())
        return super().get_queryset(request).annotate(_live_today=Subquery(today.values("seconds")))

    @admin.display(description="Live today", ordering="_live_today")
    def live_today(self, obj):
        """Live time charged today (TIME_ZONE), of the user's allowance."""
        used = getattr(obj, "_live_today", None) or 0.0
        return f"{format_duration(used)} of {format_duration(obj.effective_daily_seconds())}"

    @admin.action(description="End their live sessions")
    def end_live_sessions(self, request, queryset):
        signal_end(self, request, ((f"user={u.pk}", {"user_id": u.pk}, "") for u in queryset))


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdmin):
    """The quota ledger, per user and day: what was charged, never edited by hand."""

    list_display = ("user", "day", "used", "updated_at")
    list_filter = ("day",)
    list_select_related = ("user",)
    search_fields = ("user__username",)
    date_hierarchy = "day"
    fields = ("user", "day", "seconds", "updated_at")
    readonly_fields = fields

    @admin.display(description="Live time", ordering="seconds")
    def used(self, obj):
        return format_duration(obj.seconds)


@admin.register(AccessToken)
class AccessTokenAdmin(ReadOnlyAdmin):
    list_display = ("name", "user", "shown_prefix", "created_at", "last_used_at", "active")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "created_at")
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    # The hash is deliberately absent from every view.
    fields = ("name", "user", "shown_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke",)

    @admin.display(description="Prefix", ordering="prefix")
    def shown_prefix(self, obj):
        return f"{obj.prefix}…"

    @admin.display(description="Active", boolean=True)
    def active(self, obj):
        return obj.is_active

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = sum(
            services.access_token_revoke(user=token.user, token_id=token.pk)
            for token in queryset.select_related("user")
        )
        noun = "token" if revoked == 1 else "tokens"
        self.message_user(request, f"Revoked {revoked} {noun}.", messages.SUCCESS)


@admin.register(EphemeralToken)
class EphemeralTokenAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__",
        "user",
        "access_token",
        "created_at",
        "expire_time",
        "new_session_expire_time",
        "uses_shown",
        "model",
        "active",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "created_at")
    list_select_related = ("user", "access_token")
    search_fields = ("prefix", "user__username", "model")
    # The hash is deliberately absent from every view.
    fields = (
        "user",
        "access_token",
        "prefix",
        "created_at",
        "expire_time",
        "new_session_expire_time",
        "uses",
        "uses_count",
        "model",
        "setup",
        "field_mask",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ("revoke",)

    @admin.display(description="Uses")
    def uses_shown(self, obj):
        return f"{obj.uses_count} of {obj.uses or '∞'}"

    @admin.display(description="Active", boolean=True)
    def active(self, obj):
        return obj.revoked_at is None

    @admin.action(description="Revoke selected tokens (and end their sessions)")
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.select_related("user"):
            live = services.ephemeral_token_revoke(user=token.user, token_id=token.pk)
            if live is None:
                continue
            revoked += 1
            for conversation_id in live:
                try:
                    control.end_sessions(
                        conversation_id=conversation_id, reason=control.REASON_EPHEMERAL_REVOKED
                    )
                except Exception:
                    logger.warning("conv=%s revoke: not signalled", conversation_id, exc_info=True)
        noun = "token" if revoked == 1 else "tokens"
        self.message_user(request, f"Revoked {revoked} {noun}.", messages.SUCCESS)


tools_admin.register(admin.site)

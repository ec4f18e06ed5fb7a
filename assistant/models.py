"""Users, conversation records with their ordered event log, personal access tokens, the
ephemeral tokens minted with them, the leases of open live sessions, the daily usage
ledger the quotas are charged to, and the MCP tool servers staff add."""

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

STANDING_INSTRUCTIONS_MAX_CHARS = 2000  # a paragraph or two; the setup stays small


class User(AbstractUser):
    """Pastra's user. Staff may override the deployment's quotas per user (null = default)."""

    max_sessions = models.PositiveIntegerField(
        null=True, blank=True, help_text="Concurrent live sessions; empty = deployment default."
    )
    daily_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Live seconds per day; empty = deployment default."
    )
    # The user's own standing instructions, added after the deployment's base instruction and
    # the persona in every web session's systemInstruction (assistant/personas.py).
    standing_instructions = models.TextField(
        blank=True,
        max_length=STANDING_INSTRUCTIONS_MAX_CHARS,
        help_text="Added to the system instruction of the user's web sessions.",
    )

    def effective_max_sessions(self) -> int:
        if self.max_sessions is not None:
            return self.max_sessions
        return settings.PASTRA_MAX_SESSIONS_PER_USER

    def effective_daily_seconds(self) -> int:
        if self.daily_seconds is not None:
            return self.daily_seconds
        return settings.PASTRA_DAILY_SECONDS_PER_USER


class Conversation(models.Model):
    """One live session as the user sees it: it survives upstream reconnects and resumptions."""

    class ClientKind(models.TextChoices):
        WEB = "web", "Web app"
        SDK = "sdk", "Gemini-compatible client"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=120)
    voice = models.CharField(max_length=60, blank=True)
    client_kind = models.CharField(max_length=8, choices=ClientKind, default=ClientKind.WEB)
    status = models.CharField(max_length=8, choices=Status, default=Status.ACTIVE)
    end_reason = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Upstream (Gemini) resumption handle: server-side only, never sent to a client.
    resumption_handle = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    response_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    seconds_used = models.FloatField(default=0)
    has_tool_calls = models.BooleanField(default=False)
    has_errors = models.BooleanField(default=False)
    # The highest event `seq` written (services.conversation_record, the only writer of
    # events, numbers a batch from it under the row's lock in the same statement).
    last_seq = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "-started_at"])]

    def __str__(self):
        return self.title or f"Conversation {self.id}"

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class ConversationEvent(models.Model):
    """One entry of a conversation's ordered log. `seq` is dense and unique per conversation."""

    class Kind(models.TextChoices):
        # What the user said (typed, or spoken and transcribed).
        USER_TEXT = "user_text", "User text"
        INPUT_TRANSCRIPT = "input_transcript", "User speech (transcript)"
        # What the model said.
        MODEL_TEXT = "model_text", "Model text"
        OUTPUT_TRANSCRIPT = "output_transcript", "Model speech (transcript)"
        # Tools: functions (server or client), and Google's own code execution and search.
        TOOL_CALL = "tool_call", "Tool call"
        TOOL_RESULT = "tool_result", "Tool result"
        CODE_EXECUTION = "code_execution", "Code execution"
        CODE_RESULT = "code_result", "Code execution result"
        GROUNDING = "grounding", "Search grounding"
        # The turn and the session.
        INTERRUPTION = "interruption", "Interruption"
        ERROR = "error", "Error"
        USAGE = "usage", "Token usage"
        SESSION = "session", "Session event"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    turn = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=Kind)
    text = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="event_seq_unique")
        ]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.seq}"

    @property
    def role(self) -> str:
        if self.kind in {self.Kind.USER_TEXT, self.Kind.INPUT_TRANSCRIPT}:
            return "user"
        if self.kind in {self.Kind.MODEL_TEXT, self.Kind.OUTPUT_TRANSCRIPT}:
            return "model"
        return "system"


class AccessToken(models.Model):
    """A personal access token for the Gemini-compatible socket. Only its SHA-256 is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class EphemeralToken(models.Model):
    """A short-lived token minted with a personal access token (`POST /v1alpha/auth_tokens`,
    as Google's ephemeral tokens) for the Constrained socket. Only its SHA-256 is stored.

    `setup` and `field_mask` are the locked setup (assistant/live/gemini/constraints.py);
    `model` is the locked model, resolved, or "" when the token leaves it to the client."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ephemeral_tokens"
    )
    access_token = models.ForeignKey(
        AccessToken,
        on_delete=models.CASCADE,
        related_name="ephemeral_tokens",
        help_text="The personal access token it was minted with.",
    )
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expire_time = models.DateTimeField(help_text="No message is accepted after this.")
    new_session_expire_time = models.DateTimeField(help_text="No new session after this.")
    uses = models.PositiveIntegerField(default=1, help_text="Sessions it may start; 0 = no limit.")
    uses_count = models.PositiveIntegerField(default=0)
    model = models.CharField(max_length=120, blank=True)
    setup = models.JSONField(null=True, blank=True)
    field_mask = models.JSONField(default=list, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self):
        return f"auth_tokens/{self.prefix}…"

    @property
    def uses_left(self) -> int | None:
        """None when unlimited."""
        return None if self.uses == 0 else max(0, self.uses - self.uses_count)

    @property
    def locked(self) -> str:
        """How the setup is locked, in words."""
        if self.setup is None:
            return "fields listed" if self.field_mask else "nothing"
        return ", ".join(self.field_mask) if self.field_mask else "whole setup"


class SessionLease(models.Model):
    """The lease a worker holds while one live socket is open: it counts the user's concurrent
    sessions across workers and marks whose conversation is live. Renewed by its holder
    (`heartbeat_at`); a lease not renewed in time is stale (its worker died) and no longer
    counts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="session_leases"
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="session_leases"
    )
    worker = models.CharField(max_length=120, help_text="host:pid of the worker holding it")
    client_kind = models.CharField(max_length=8, choices=Conversation.ClientKind)
    ephemeral_token = models.ForeignKey(
        EphemeralToken,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="session_leases",
        help_text="The ephemeral token the session was opened with (revoking it ends it).",
    )
    access_token = models.ForeignKey(
        AccessToken,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="session_leases",
        help_text="The access token behind the session: the one it was opened with, or the one "
        "that minted its ephemeral token (revoking it ends the session).",
    )
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(db_index=True)
    # The quota reservation (services.lease_acquire / lease_renew / lease_release): live time
    # up to `settled_at` is charged as used; `reserved_seconds` more were charged in advance
    # to `reserved_day`, and are trimmed to the actual use at the next renewal or release.
    settled_at = models.DateTimeField(null=True, blank=True)
    reserved_seconds = models.FloatField(default=0)
    reserved_day = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        # The table keeps its first name (the model was LiveSession): renaming it would break
        # the previous release's workers during a rolling deploy.
        db_table = "assistant_livesession"

    def __str__(self):
        return f"session lease {self.id} ({self.worker})"


class DailyUsage(models.Model):
    """The quota ledger: live seconds charged to a user on one day (the deployment's
    TIME_ZONE), as they are used, whatever conversation they were spent in. It outlives the
    conversations (deleting one refunds nothing) and is the only source of "used today"."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="daily_usage"
    )
    day = models.DateField()
    seconds = models.FloatField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "user"]
        verbose_name_plural = "daily usage"
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="daily_usage_user_day_unique")
        ]

    def __str__(self):
        return f"{self.user_id} on {self.day}: {self.seconds:.0f} s"


class MCPServer(models.Model):
    """A staff-configured MCP tool server (Streamable HTTP): its tools join the sessions of the
    users it is enabled for, as `<name>__<tool>` (assistant/tools/mcp_tools.py). The secret is
    stored sealed (assistant/tools/mcp_secret.py) or named as a file, never in clear."""

    name = models.CharField(
        max_length=24,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z][A-Za-z0-9_-]*$",
                "Start with a letter; then letters, digits, - and _ only.",
            )
        ],
        help_text="The model sees its tools as NAME__TOOL.",
    )
    url = models.URLField(
        "URL", max_length=500, help_text="The Streamable HTTP endpoint, e.g. https://host/mcp."
    )
    secret_sealed = models.TextField(blank=True, editable=False)
    secret_file = models.CharField(
        max_length=500,
        blank=True,
        help_text="A file on the server holding the bearer secret (wins over a stored one).",
    )
    tools = models.TextField(
        blank=True, help_text="Comma-separated tool names to enable; empty = every listed tool."
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="+")
    timeout_seconds = models.FloatField(
        default=8.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(60.0)],
        help_text="Time limit of one call.",
    )
    allow_private = models.BooleanField(
        default=False,
        help_text="Allow a loopback, private or link-local address (refused otherwise).",
    )
    enabled = models.BooleanField(default=True)
    listed_tools = models.JSONField(default=list, blank=True, editable=False)
    status = models.TextField(blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP tool server"

    def __str__(self):
        return self.name

    def clean(self):
        """Two servers whose names reduce alike would give their tools the same names."""
        from assistant.tools.mcp_schema import server_part

        try:
            part = server_part(self.name).lower()
        except ValueError as exc:
            raise ValidationError({"name": str(exc)}) from None
        others = MCPServer.objects.exclude(pk=self.pk).values_list("name", flat=True)
        if any(server_part(other).lower() == part for other in others):
            raise ValidationError({"name": "Another server's tools would have the same names."})

    def enabled_tool_names(self) -> frozenset[str] | None:
        """The tools staff enabled by name; None: every listed tool."""
        names = frozenset(n.strip() for n in self.tools.split(",") if n.strip())
        return names or None

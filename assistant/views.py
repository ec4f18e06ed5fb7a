"""The user's pages: the assistant shell, conversation history, personal access tokens and
the user's own standing instructions.

Thin adapters: reads go through assistant.selectors, writes through assistant.services.
"""

import json
import logging
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assistant import control, personas, selectors, services
from assistant.forms import (
    AccessTokenCreateForm,
    ConversationSearchForm,
    StandingInstructionsForm,
)
from assistant.models import Conversation, ConversationEvent

logger = logging.getLogger(__name__)

CONVERSATIONS_PER_PAGE = 20
EARLIER_EVENTS = 60  # the last events of a continued conversation shown on the talk page
LIVE_WS_PATH = "/ws/live/"

Kind = ConversationEvent.Kind


@login_required
@require_GET
def talk(request):
    # Everything the browser needs to open a session; never a key or other secret.
    config = {
        "wsPath": LIVE_WS_PATH,
        "model": settings.PASTRA_MODEL,
        "voice": settings.PASTRA_VOICE,
        "emulator": settings.PASTRA_UPSTREAM_IS_EMULATOR,
        "personas": personas.PERSONAS,
        "voices": personas.VOICES,
        "voiceStyles": personas.VOICE_STYLES,
        "languages": personas.LANGUAGES,
        "mediaResolutions": personas.MEDIA_RESOLUTIONS,
    }
    quota_seconds = int(selectors.user_live_seconds_left(user=request.user))
    return render(
        request,
        "assistant/talk.html",
        {
            "config": config,
            "emulator": settings.PASTRA_UPSTREAM_IS_EMULATOR,
            "quota_seconds": quota_seconds,
            "quota_text": quota_text(quota_seconds),
            "earlier": _earlier_turns(request),
            "instructions_form": _instructions_in_settings(request.user),
        },
    )


def _instructions_in_settings(user) -> StandingInstructionsForm:
    """The standing instructions' field sits among the Settings sheet's fields (a form of its
    own cannot nest in the sheet's): it belongs to the sheet's #instructions-form."""
    form = StandingInstructionsForm(instance=user)
    form.fields["standing_instructions"].widget.attrs["form"] = "instructions-form"
    return form


def _earlier_turns(request) -> list[dict]:
    """History's Continue (`/?conversation=<uuid>`): the end of that conversation's clean
    transcript, shown before any new turn. Not the user's, or not an id: nothing."""
    try:
        conversation = selectors.conversation_get_for_user(
            user=request.user, conversation_id=uuid.UUID(request.GET.get("conversation", ""))
        )
    except (ValueError, Conversation.DoesNotExist):
        return []
    events = selectors.conversation_recent_turns(conversation=conversation, limit=EARLIER_EVENTS)
    return transcript_items(events)


@login_required
@require_GET
@never_cache
def quota(request):
    """The day's remaining live time, as the talk page shows it (it asks after each session)."""
    seconds = int(selectors.user_live_seconds_left(user=request.user))
    return JsonResponse({"seconds": seconds, "text": quota_text(seconds)})


@login_required
@require_http_methods(["GET", "POST"])
def standing_instructions(request):
    """The user's standing instructions: the talk page's Settings saves them here (fetch, JSON
    back), and without JavaScript this page does (a redirect back with a message)."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    data = request.POST if request.method == "POST" else None
    form = StandingInstructionsForm(data, instance=request.user)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            if wants_json:
                return JsonResponse({"saved": True})
            messages.success(
                request, "Saved. Your standing instructions apply from your next session."
            )
            next_url = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                next_url = "assistant:talk"
            return redirect(next_url)
        if wants_json:
            return JsonResponse({"saved": False, "errors": form.errors.get_json_data()}, status=400)
    return render(request, "assistant/standing_instructions.html", {"form": form})


def quota_text(seconds: int) -> str:
    """The talk page's remaining live time (static/js/quota.js counts it down the same way)."""
    if seconds <= 0:
        return "No live time left today"
    if seconds < 60:
        return f"{seconds} s left today"
    return f"{seconds // 60} min left today"


@login_required
@require_GET
def conversation_list(request):
    form = ConversationSearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    conversations = selectors.conversation_list_for_user(user=request.user, query=query)
    page = Paginator(conversations, CONVERSATIONS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "assistant/conversation_list.html",
        {"form": form, "query": query, "page": page},
    )


def _own_conversation(request, conversation_id) -> Conversation:
    try:
        return selectors.conversation_get_for_user(
            user=request.user, conversation_id=conversation_id
        )
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None


@login_required
@require_GET
def conversation_detail(request, conversation_id):
    conversation = _own_conversation(request, conversation_id)
    events = selectors.conversation_events(conversation=conversation)
    details = request.GET.get("details") == "1"
    return render(
        request,
        "assistant/conversation_detail.html",
        {
            "conversation": conversation,
            "details": details,
            "timeline": transcript_items(events, details=details),
        },
    )


@login_required
@require_GET
@never_cache
def conversation_export(request, conversation_id):
    conversation = _own_conversation(request, conversation_id)
    response = JsonResponse(
        selectors.conversation_export(conversation=conversation),
        json_dumps_params={"indent": 2, "ensure_ascii": False},
    )
    filename = f"pastra-conversation-{conversation.pk}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def conversation_delete(request, conversation_id):
    conversation = _own_conversation(request, conversation_id)
    if request.method == "POST":
        if conversation.status == Conversation.Status.ACTIVE:
            control.end_conversations([conversation.pk], reason=control.REASON_DELETED)
        services.conversation_delete(user=request.user, conversation_id=conversation.pk)
        messages.success(request, f"Deleted “{conversation}”.")
        return redirect("assistant:conversation_list")
    return render(
        request, "assistant/conversation_confirm_delete.html", {"conversation": conversation}
    )


@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def token_list(request):
    """GET lists tokens; POST creates one and shows it in this response, once, and never again."""
    created = raw_token = None
    if request.method == "POST":
        form = AccessTokenCreateForm(request.POST)
        if form.is_valid():
            created, raw_token = services.access_token_create(
                user=request.user, name=form.cleaned_data["name"]
            )
            form = AccessTokenCreateForm()
    else:
        form = AccessTokenCreateForm()
    return render(
        request,
        "assistant/token_list.html",
        {
            "form": form,
            "tokens": selectors.access_token_list_for_user(user=request.user),
            "ephemeral_tokens": selectors.ephemeral_token_list_for_user(user=request.user),
            "created": created,
            "raw_token": raw_token,
        },
    )


@login_required
@require_POST
def token_revoke(request, token_id):
    if services.access_token_revoke(user=request.user, token_id=token_id):
        messages.success(
            request,
            "Token revoked. Its open sessions, and those of the ephemeral tokens minted with "
            "it, are ended now, and no client can connect with either again.",
        )
    else:
        messages.info(request, "That token was already revoked or does not exist.")
    return redirect("assistant:token_list")


@login_required
@require_POST
def ephemeral_token_revoke(request, token_id):
    live = services.ephemeral_token_revoke(user=request.user, token_id=token_id)
    if live is not None:
        # Sessions open with it end now, on whichever worker.
        control.end_conversations(live, reason=control.REASON_EPHEMERAL_REVOKED)
        messages.success(request, "Ephemeral token revoked. Its open sessions are ended.")
    else:
        messages.info(request, "That ephemeral token was already revoked or does not exist.")
    return redirect("assistant:token_list")


# --- Transcript timeline (presentation only) -------------------------------------------------


def _pretty_json(value) -> str:
    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _web_url(value) -> str:
    """Only http(s) links are rendered as links (a model could cite a javascript: URL)."""
    url = str(value or "")
    return url if urlsplit(url).scheme in ("http", "https") else ""


def _grounding(data: dict) -> tuple[list[dict], list[str]]:
    sources = data.get("sources")
    if sources is None:
        chunks = data.get("groundingChunks") or data.get("grounding_chunks") or []
        sources = [c.get("web") or {} for c in chunks if isinstance(c, dict)]
    links = []
    for source in sources:
        if not isinstance(source, dict):
            continue
        url = _web_url(source.get("uri") or source.get("url"))
        title = source.get("title") or source.get("domain") or url
        if url or title:
            links.append({"url": url, "title": str(title)})
    queries = (
        data.get("queries") or data.get("webSearchQueries") or data.get("web_search_queries") or []
    )
    return links, [str(q) for q in queries if q]


# What a clean transcript leaves out (the "Show details" view has them).
DETAIL_KINDS = frozenset({Kind.USAGE, Kind.SESSION})


def transcript_items(events, *, details: bool = False) -> list[dict]:
    """The record's timeline. Clean by default: no usage or session events, and the time
    (hours and minutes) only on an item whose minute differs from the one before; with
    `details`, every event with its time to the second (`time_format`)."""
    items, last_minute = [], None
    for event in events:
        if not details and event.kind in DETAIL_KINDS:
            continue
        item = timeline_item(event)
        local = timezone.localtime(event.created_at)
        minute = local.replace(second=0, microsecond=0)
        if details or minute != last_minute:
            item["time"] = local
            item["time_format"] = "H:i:s" if details else "H:i"
        last_minute = minute
        items.append(item)
    return items


def timeline_item(event: ConversationEvent) -> dict:
    """What the transcript template needs for one event, whatever shape its `data` has."""
    data = event.data if isinstance(event.data, dict) else {"value": event.data}
    item = {
        "event": event,
        "kind": event.kind,
        "role": event.role,
        "label": event.get_kind_display(),
        "text": event.text,
    }
    if event.kind == Kind.TOOL_CALL:
        item["name"] = data.get("name") or event.text
        item["detail"] = _pretty_json(data.get("args", data.get("arguments")))
    elif event.kind == Kind.TOOL_RESULT:
        item["name"] = data.get("name") or event.text
        result = data.get("response", data.get("result", data.get("output")))
        item["detail"] = _pretty_json(result)
        item["error"] = data.get("error") or ""
    elif event.kind == Kind.CODE_EXECUTION:
        item["code"] = data.get("code") or event.text
        item["language"] = str(data.get("language") or "").lower()
    elif event.kind == Kind.CODE_RESULT:
        item["output"] = data.get("output") or event.text
        item["outcome"] = data.get("outcome") or ""
    elif event.kind == Kind.GROUNDING:
        item["sources"], item["queries"] = _grounding(data)
    elif event.kind == Kind.USAGE:
        item["usage"] = [
            (key.replace("_", " "), value)
            for key, value in sorted(data.items())
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
    elif event.kind == Kind.ERROR:
        item["text"] = event.text or str(data.get("message") or "")
        item["code"] = data.get("code") or ""
    return item


@require_GET
def favicon(request):
    """Browsers (and the admin's pages, which do not link an icon) ask for /favicon.ico."""
    return redirect(static("img/pastra-192.png"), permanent=True)


@require_GET
def service_worker(request):
    """The PWA's service worker, served from the root so its scope covers the whole app."""
    body = (settings.BASE_DIR / "static" / "sw.js").read_bytes()
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return response

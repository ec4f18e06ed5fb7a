"""Account policy: whether signup is open comes from PASTRA_SIGNUP_OPEN (the django-allauth
adapter); signing out, a password changed or reset and an account deactivated end the live
sessions they no longer vouch for, on whichever worker holds them.

What each ends, and why:
- signing out: every live session of the user;
- the user changing their own password while signed in (allauth's page, or Django admin's
  for a staff member's own account): their web sockets in *other* browsers, whose Django
  sessions Django has just invalidated; the browser that changed it stays signed in
  (`update_session_auth_hash`) and keeps its sockets. Access tokens do not depend on the
  password, so Gemini-path sessions go on;
- a password reset (allauth's emailed link), a password set by someone else (staff in
  /admin/, `manage.py changepassword`, a shell): every live session of the user, web and
  Gemini path; the access tokens stay valid (revoke them on /settings/tokens/);
- `is_active=False` saved anywhere: every live session; no credential of theirs works.

The receivers are connected explicitly in AssistantConfig.ready (`connect`).
"""

import logging

from allauth.account import signals as allauth_signals
from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.conf import settings
from django.db.models.signals import post_save

from assistant import control

logger = logging.getLogger(__name__)

WEB_PATH = "web"  # the web adapter's path_name (assistant/live/adapters/web.py)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return settings.PASTRA_SIGNUP_OPEN

    def logout(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            try:
                control.end_sessions(user_id=user.pk, reason="You signed out.")
            except Exception:  # a down channel layer must not block signing out
                logger.warning(
                    "user=%s sign-out: live sessions not signalled", user.pk, exc_info=True
                )
        return super().logout(request)


def _own_browser(user) -> str | None:
    """The Django session key of the request changing this user's password, if the user
    is changing it themself while signed in (allauth's middleware keeps the request)."""
    request = allauth_context.request
    if request is None or getattr(request, "user", None) is None:
        return None
    if not request.user.is_authenticated or request.user.pk != user.pk:
        return None
    return getattr(getattr(request, "session", None), "session_key", None)


def user_saved(sender, instance, created, update_fields=None, **kwargs):
    """post_save of the user model: a deactivation or a new password ends live sessions
    (after the commit). Read before `update_session_auth_hash` cycles the changer's key."""
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    if not instance.is_active:
        control.end_sessions_on_commit(
            user_id=instance.pk, kind=control.SIGNED_OUT, reason=control.REASON_DEACTIVATED
        )
    elif getattr(instance, "_password", None) is not None:  # set_password() then save()
        keep = _own_browser(instance)
        if keep is None:  # a reset, or set by someone else: everything
            control.end_sessions_on_commit(
                user_id=instance.pk, kind=control.SIGNED_OUT, reason=control.REASON_PASSWORD_RESET
            )
        else:  # changed by the user: their other browsers
            control.end_sessions_on_commit(
                user_id=instance.pk,
                kind=control.SIGNED_OUT,
                reason=control.REASON_PASSWORD_CHANGED,
                keep=keep,
                path=WEB_PATH,
            )


def password_reset(sender, request, user, **kwargs):
    """allauth's reset by emailed link (also when the resetter is signed in): everything."""
    control.end_sessions_on_commit(
        user_id=user.pk, kind=control.SIGNED_OUT, reason=control.REASON_PASSWORD_RESET
    )


def connect() -> None:
    """Connect the receivers (once; from AssistantConfig.ready)."""
    post_save.connect(user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="pastra.user_saved")
    allauth_signals.password_reset.connect(password_reset, dispatch_uid="pastra.password_reset")

"""Account policy for django-allauth: whether signup is open comes from PASTRA_SIGNUP_OPEN;
signing out ends the user's live sessions (on whichever worker holds them)."""

import logging

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings

from assistant import control

logger = logging.getLogger(__name__)


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

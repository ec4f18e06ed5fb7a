"""Template context every page needs."""

from django.conf import settings


def site(request):
    return {"signup_open": settings.PASTRA_SIGNUP_OPEN}

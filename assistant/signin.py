"""Both sign-in forms under the login throttle (assistant/throttle.py): allauth's adapter
(Pastra's account policy plus the throttle; settings.ACCOUNT_ADAPTER) and the admin's login
form (AdminSite.login_form, set in pastra_site/urls.py)."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from assistant import accounts, throttle


def _login(credentials: dict) -> str:
    return credentials.get("email") or credentials.get("username") or ""


class AccountAdapter(accounts.AccountAdapter):
    def get_client_ip(self, request):
        # allauth's own rate limits count per address too: the same address as the throttle.
        return throttle.client_address(request)

    def pre_authenticate(self, request, **credentials):
        # Replaces allauth's per-login-name limit (ACCOUNT_RATE_LIMITS["login_failed"]).
        refusal = throttle.login_check(request, _login(credentials))
        if refusal is not None:
            raise forms.ValidationError(refusal.message, code="too_many_login_attempts")

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        if user is not None:
            throttle.login_succeeded(request, user)
        return user

    def authentication_failed(self, request, **credentials):
        throttle.login_failed(request, _login(credentials))


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's login form, under the same throttle as allauth's."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return super().clean()
        refusal = throttle.login_check(self.request, username)
        if refusal is not None:
            raise forms.ValidationError(refusal.message, code="too_many_login_attempts")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            # Only a wrong password counts; a right one for a non-staff account does not.
            if self.user_cache is None:
                throttle.login_failed(self.request, username)
            raise
        throttle.login_succeeded(self.request, self.user_cache)
        return cleaned

"""Top-level URLs: admin, accounts, health, the Gemini-compatible REST endpoint for
ephemeral tokens (at the path the SDKs ask for), and the assistant app. Both login views
answer a throttled attempt with 429 (assistant/throttle.py)."""

from allauth.account import views as account_views
from django.contrib import admin
from django.urls import include, path, re_path

from assistant import auth_tokens, health, signin, throttle, views

admin.site.login_form = signin.AdminLoginForm

urlpatterns = [
    path("admin/login/", throttle.refusals_as_429(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/login/", throttle.refusals_as_429(account_views.login)),
    path("accounts/", include("allauth.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("v1alpha/auth_tokens", auth_tokens.create, name="auth_tokens"),
    re_path(r"^(?P<version>v1|v1beta)/auth_tokens$", auth_tokens.other_version),
    path("sw.js", views.service_worker, name="service_worker"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("", include("assistant.urls")),
]

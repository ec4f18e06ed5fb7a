"""Top-level URLs: admin, accounts, health, and the assistant app."""

from django.contrib import admin
from django.urls import include, path

from assistant import health, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("", include("assistant.urls")),
]

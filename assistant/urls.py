"""The user's pages. `talk` stays at the root: it is the product."""

from django.urls import path

from assistant import views

app_name = "assistant"

urlpatterns = [
    path("", views.talk, name="talk"),
    path("conversations/", views.conversation_list, name="conversation_list"),
    path(
        "conversations/<uuid:conversation_id>/",
        views.conversation_detail,
        name="conversation_detail",
    ),
    path(
        "conversations/<uuid:conversation_id>/export/",
        views.conversation_export,
        name="conversation_export",
    ),
    path(
        "conversations/<uuid:conversation_id>/delete/",
        views.conversation_delete,
        name="conversation_delete",
    ),
    path("quota/", views.quota, name="quota"),
    path("settings/instructions/", views.standing_instructions, name="standing_instructions"),
    path("settings/tokens/", views.token_list, name="token_list"),
    path("settings/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path(
        "settings/tokens/ephemeral/<int:token_id>/revoke/",
        views.ephemeral_token_revoke,
        name="ephemeral_token_revoke",
    ),
]

"""The assistant app's configuration: at start-up, the live path's at-fork hook and the
account receivers that end live sessions when a credential is lost (nothing else)."""

from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The at-fork hook that keeps a forked child off its parent's pooled connections
        # (assistant/live/db.py): in every process, before any fork.
        from assistant.live import db

        db.install_fork_hook()
        # A password changed or reset, an account deactivated: their live sessions end
        # (assistant/accounts.py). Connected here, not by importing a module.
        from assistant import accounts

        accounts.connect()

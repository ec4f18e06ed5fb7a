from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the at-fork hook that keeps a forked child off its parent's pooled
        # connections (assistant/live/db.py): in every process, before any fork.
        from assistant.live import db  # noqa: F401

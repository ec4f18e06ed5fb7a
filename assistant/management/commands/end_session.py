"""`manage.py end_session (--user USERNAME | --conversation UUID)`: end live sessions on
whichever worker holds them (a `live.end` over the channel layer)."""

import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from assistant import control


class Command(BaseCommand):
    help = (
        "End the matching live sessions on whichever worker holds them; the client gets a "
        "close code and reason. Prints how many sessions were signalled."
    )

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--user", metavar="USERNAME", help="every live session of this user")
        target.add_argument(
            "--conversation", metavar="UUID", help="the session of one conversation"
        )
        parser.add_argument(
            "--reason", default="Ended by an administrator", help="shown to the client"
        )

    def handle(self, *args, user=None, conversation=None, reason="", **options):
        if user is not None:
            User = get_user_model()
            try:
                target = {"user_id": User.objects.get_by_natural_key(user).pk}
            except User.DoesNotExist:
                raise CommandError(f"No user called {user!r}.") from None
        else:
            try:
                target = {"conversation_id": uuid.UUID(conversation)}
            except ValueError:
                raise CommandError(f"{conversation!r} is not a conversation id.") from None
        try:
            count = control.end_sessions(**target, reason=reason)
        except Exception as exc:  # the channel layer (Redis) is down
            raise CommandError(f"Could not reach the channel layer: {exc}") from exc
        self.stdout.write(f"Signalled {count} live session{'' if count == 1 else 's'}.")

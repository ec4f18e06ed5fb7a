"""`manage.py create_access_token USERNAME [--name NAME]`: print a new token, alone on one line."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from assistant import services


class Command(BaseCommand):
    help = (
        "Create a personal access token for the Gemini-compatible socket and print it "
        "(only its hash is stored: this is the one chance to copy it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="a label for the token")

    def handle(self, *args, username, name, **options):
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"No user called {username!r}.") from None
        if not user.is_active:
            self.stderr.write(f"Warning: {username} is inactive; the token will not work yet.")
        _, raw = services.access_token_create(user=user, name=name)
        self.stdout.write(raw)

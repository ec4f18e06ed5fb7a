"""`python manage.py gemini_emulator`: runs the stand-alone Gemini Live emulator.

A thin wrapper: the emulator itself (`gemini_emulator/`) never imports Django.
"""

from django.core.management.base import BaseCommand, CommandError

from gemini_emulator.cli import add_arguments, config_from_options, serve
from gemini_emulator.config import ConfigError


class Command(BaseCommand):
    help = "Run the Gemini Live emulator (same as `python -m gemini_emulator`)."

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        try:
            config = config_from_options(options)
        except ConfigError as error:
            raise CommandError(str(error)) from error
        try:
            serve(config, self._announce)
        except OSError as error:  # e.g. the port is taken
            raise CommandError(f"cannot listen on {config.host}:{config.port}: {error}") from error

    def _announce(self, line: str) -> None:
        # Flushed at once: a supervisor reads the URL (the port, with --port 0) from a pipe.
        self.stdout.write(line)
        self.stdout.flush()

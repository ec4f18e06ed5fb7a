"""`python -m gemini_emulator --host 127.0.0.1 --port 9100 [--tls-cert F --tls-key F]`."""

from __future__ import annotations

import argparse
import sys

from .cli import add_arguments, config_from_options, serve
from .config import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gemini_emulator", description="Run the Gemini Live emulator."
    )
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        config = config_from_options(options)
    except ConfigError as error:
        parser.error(str(error))
    try:
        serve(config, lambda line: print(line, flush=True))
    except OSError as error:  # e.g. the port is taken
        parser.exit(1, f"gemini_emulator: cannot listen on {config.host}:{config.port}: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

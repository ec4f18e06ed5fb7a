"""The README's configuration table and .env.example name every variable Pastra reads."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "pastra_site" / "settings.py"]


def variables_read() -> set[str]:
    names = set()
    for source in SOURCES:
        text = source.read_text()
        names |= set(re.findall(r'env_[a-z_]+\(\s*"([A-Z][A-Z0-9_]+)"', text))
        names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]+)"', text))
    return names - {"DJANGO_SETTINGS_MODULE"}


def test_every_variable_is_in_the_readme_and_the_example_env():
    names = variables_read()
    assert {"DATABASE_URL", "PASTRA_DB_POOL_SIZE", "PASTRA_DRAIN_SECONDS"} <= names
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    missing_readme = sorted(n for n in names if f"`{n}`" not in readme and f"{n}`" not in readme)
    missing_example = sorted(n for n in names if not re.search(rf"^{n}=", example, re.M))
    assert not missing_readme, f"not in README.md's table: {missing_readme}"
    assert not missing_example, f"not in .env.example: {missing_example}"

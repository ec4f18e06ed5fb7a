"""The lock files agree with the requirement ranges: requirements.lock (from requirements.txt)
and requirements-dev.lock (from requirements-dev.txt) pin every requirement, and each extra it
asks for, at a version inside its range, with hashes, compiled from the current inputs.

`make`, the Dockerfile and CI install with `pip install --require-hashes -r <lock>`, so what
runs is exactly what was locked. To update the locks after editing a requirements file (needs
`uv` on PATH, e.g. `pip install uv`, and the package index):

    .venv/bin/python -m tests.test_lockfile
"""

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# What the locks are for: the Dockerfile's python:3.11-slim, CI and the team's machines.
PYTHON = "3.11"
PLATFORM = "x86_64-manylinux_2_28"
UPDATE = ".venv/bin/python -m tests.test_lockfile"
# lock file → the requirement files it is compiled from (the first is the input; the rest are
# the files it includes with -r, part of the header hash too).
LOCKS = {
    "requirements.lock": ("requirements.txt",),
    "requirements-dev.lock": ("requirements-dev.txt", "requirements.txt"),
}
HEADER = "# inputs-sha256: "
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def inputs_hash(sources: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for name in sources:
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes() + b"\0")
    digest.update(f"python={PYTHON} platform={PLATFORM}".encode())
    return digest.hexdigest()


def requirements(name: str) -> list[Requirement]:
    """The requirements of a file, following `-r` includes."""
    found = []
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            found += requirements(line[3:].strip())
            continue
        assert not line.startswith("-"), f"{name}: unsupported option line {raw!r}"
        found.append(Requirement(line))
    return found


def lock_pins(name: str) -> dict[str, tuple[Version, str]]:
    """{canonical name: (version, marker)} of a lock; asserts every pin carries hashes."""
    lines = (ROOT / name).read_text().splitlines()
    pins: dict[str, tuple[Version, str]] = {}
    for index, line in enumerate(lines):
        if match := PIN.match(line):
            package, version, marker = match.groups()
            hashes = 0
            for follow in lines[index + 1 :]:
                if not follow.startswith("    --hash="):
                    break
                hashes += 1
            assert hashes, f"{name}: {package}=={version} has no --hash"
            pins[canonicalize_name(package)] = (Version(version), marker or "")
    return pins


def environment(extra: str = "") -> dict[str, str]:
    env = default_environment()
    env.update({"python_version": PYTHON, "python_full_version": f"{PYTHON}.7"})
    env.update({"sys_platform": "linux", "platform_system": "Linux", "extra": extra})
    env.update({"platform_machine": "x86_64", "os_name": "posix"})
    return env


def _extra_requirements(requirement: Requirement) -> list[Requirement]:
    """What the extras of a requirement add, from the installed distribution's metadata."""
    from importlib.metadata import PackageNotFoundError, distribution

    if not requirement.extras:
        return []
    try:
        requires = distribution(requirement.name).requires or []
    except PackageNotFoundError:  # pragma: no cover (make test installs the dev lock)
        pytest.fail(f"{requirement.name} is not installed: run `make test` to install the lock")
    added = []
    for text in requires:
        dependency = Requirement(text)
        if dependency.marker is None:
            continue
        if any(dependency.marker.evaluate(environment(extra)) for extra in requirement.extras):
            added.append(dependency)
    return added


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_the_lock_was_compiled_from_the_current_requirement_files(lock):
    head = [line for line in (ROOT / lock).read_text().splitlines() if line.startswith(HEADER)]
    assert head, f"{lock} has no `{HEADER}…` line: run `{UPDATE}`"
    assert head[0].removeprefix(HEADER).split()[0] == inputs_hash(LOCKS[lock]), (
        f"{', '.join(LOCKS[lock])} changed since {lock} was compiled: run `{UPDATE}`"
    )


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_is_locked_inside_its_range(lock):
    pins = lock_pins(lock)
    problems = []
    wanted = requirements(LOCKS[lock][0])
    for requirement in wanted + [r for req in wanted for r in _extra_requirements(req)]:
        if requirement.marker is not None and not requirement.marker.evaluate(environment()):
            continue
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in {lock}")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{requirement} but {lock} has {name}=={pins[name][0]}")
    assert not problems, "\n".join(problems) + f"\nrun `{UPDATE}`"


def test_the_dev_lock_runs_what_production_runs():
    """Tests exercise the versions the image ships: every runtime pin is the same in dev."""
    runtime, dev = lock_pins("requirements.lock"), lock_pins("requirements-dev.lock")
    differ = [
        f"{name}: {version} vs {dev.get(name, ('missing',))[0]}"
        for name, (version, _) in runtime.items()
        if dev.get(name, (None,))[0] != version
    ]
    assert not differ, differ


def test_every_install_goes_through_the_lock_with_hashes():
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--require-hashes -r requirements.lock" in makefile
    assert "--require-hashes -r requirements.lock" in dockerfile
    for text in (makefile, dockerfile):
        assert not re.search(r"pip install[^\n]*-r requirements(-dev)?\.txt", text)


# --- updating the locks ---------------------------------------------------------------------


def compile_locks() -> None:
    """Re-resolve both locks with uv (current pins are kept where they still fit: uv reads the
    existing output file as preferences; delete a line to let that package move)."""
    uv = shutil.which("uv")
    if uv is None:
        sys.exit("needs uv on PATH (pip install uv)")
    for lock, sources in LOCKS.items():
        subprocess.run(
            [
                uv, "pip", "compile", sources[0], "--output-file", lock, "--generate-hashes",
                "--no-strip-markers", "--python-version", PYTHON, "--python-platform", PLATFORM,
                "--custom-compile-command", UPDATE, "--quiet",
            ],
            cwd=ROOT,
            check=True,
        )  # fmt: skip
        text = (ROOT / lock).read_text()
        text = "".join(line for line in text.splitlines(True) if not line.startswith(HEADER))
        stamp = (
            f"{HEADER}{inputs_hash(sources)} ({', '.join(sources)}; Python {PYTHON}, {PLATFORM})\n"
        )
        (ROOT / lock).write_text(stamp + text)
        print(f"{lock}: {len(lock_pins(lock))} packages")


if __name__ == "__main__":
    compile_locks()

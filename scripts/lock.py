"""The two pinned requirement files, from the installed environment.

    python scripts/lock.py check    # exit 1 and say what is wrong if the split is off
    python scripts/lock.py split    # rewrite both files from the pins they hold today

requirements/lock.txt       what requirements/base.in needs at runtime, with every dependency
                            (the production image installs only this)
requirements/lock-test.txt  `-r lock.txt`, then what requirements/test.in adds for tests and
                            development (pytest, moto, ruff, the embedded PostgreSQL/Redis, honcho)

Both stay sorted `name==version` lines (case-insensitive order), so merges stay easy. The
dependency closure is read from the installed packages' metadata (Requires-Dist, extras and
markers evaluated for this Python), so run it with the project's .venv after installing.
"""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements"
RUNTIME_IN, TEST_IN = REQUIREMENTS / "base.in", REQUIREMENTS / "test.in"
RUNTIME_LOCK, TEST_LOCK = REQUIREMENTS / "lock.txt", REQUIREMENTS / "lock-test.txt"
TEST_LOCK_HEADER = "-r lock.txt\n"
# Installers bring these themselves (venv, python images), as pip-compile leaves them out by default.
PROVIDED = {"pip", "setuptools", "wheel"}


def read_in(path: Path) -> list[Requirement]:
    requirements = []
    for line in path.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            requirements.append(Requirement(line))
    return requirements


def read_pins(path: Path) -> dict[str, str]:
    """{canonical name: 'Name==version'} of a lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-r")):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line)
        if not match:
            raise ValueError(f"{path.name}: not a `name==version` line: {line!r}")
        pins[canonicalize_name(match.group(1))] = line
    return pins


def closure(roots: list[Requirement]) -> set[str]:
    """Canonical names of the roots and everything they need, extras included."""
    environment = default_environment()
    needed: set[str] = set()
    pending = [(canonicalize_name(req.name), frozenset(req.extras)) for req in roots]
    seen: set[tuple[str, frozenset]] = set()
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        needed.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError as exc:
            raise SystemExit(f"lock: {name} is not installed; install the locks first") from exc
        for spec in requires:
            requirement = Requirement(spec)
            if requirement.marker is not None and not any(
                requirement.marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""})
            ):
                continue
            pending.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return needed


def sort_key(line: str) -> str:
    """By name, ignoring case (Flask before flask-cors): the order the lock always had."""
    return line.split("==", 1)[0].lower()


def expected_split(pins: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(runtime lines, test-only lines, needed names missing from the pins)."""
    runtime = closure(read_in(RUNTIME_IN))
    everything = runtime | closure(read_in(TEST_IN))
    missing = sorted(everything - set(pins) - PROVIDED)
    runtime_lines = sorted((pins[name] for name in runtime if name in pins), key=sort_key)
    test_lines = sorted((pins[name] for name in everything - runtime if name in pins), key=sort_key)
    return runtime_lines, test_lines, missing


def all_pins() -> dict[str, str]:
    pins = read_pins(RUNTIME_LOCK)
    if TEST_LOCK.exists():
        pins.update(read_pins(TEST_LOCK))
    return pins


def check() -> list[str]:
    problems = []
    runtime_lines, test_lines, missing = expected_split(all_pins())
    if missing:
        problems.append(f"needed but pinned nowhere: {', '.join(missing)}")
    runtime_now = [line for line in RUNTIME_LOCK.read_text().splitlines() if line.strip()]
    test_text = TEST_LOCK.read_text()
    test_now = [line for line in test_text.splitlines() if line.strip() and not line.startswith("-r")]
    if not test_text.startswith(TEST_LOCK_HEADER):
        problems.append(f"{TEST_LOCK.name} must start with `{TEST_LOCK_HEADER.strip()}`")
    for path, now, expected in ((RUNTIME_LOCK, runtime_now, runtime_lines), (TEST_LOCK, test_now, test_lines)):
        if now != sorted(now, key=sort_key):
            problems.append(f"{path.name} is not sorted")
        extra, absent = sorted(set(now) - set(expected)), sorted(set(expected) - set(now))
        if extra:
            problems.append(f"{path.name} holds what belongs elsewhere or nowhere: {', '.join(extra)}")
        if absent:
            problems.append(f"{path.name} lacks: {', '.join(absent)}")
    return problems


def split() -> None:
    runtime_lines, test_lines, missing = expected_split(all_pins())
    if missing:
        raise SystemExit(f"lock: needed but pinned nowhere: {', '.join(missing)} (pin them, then split)")
    RUNTIME_LOCK.write_text("".join(f"{line}\n" for line in runtime_lines))
    TEST_LOCK.write_text(TEST_LOCK_HEADER + "".join(f"{line}\n" for line in test_lines))
    print(f"lock: {len(runtime_lines)} runtime pins in {RUNTIME_LOCK.name}, "
          f"{len(test_lines)} test/dev pins in {TEST_LOCK.name}")


def main(argv: list[str]) -> int:
    if argv == ["split"]:
        split()
        return 0
    if argv == ["check"]:
        problems = check()
        for problem in problems:
            print(f"lock: {problem}", file=sys.stderr)
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

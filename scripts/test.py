"""`make test`: lint, migrations in sync with models, then the whole pytest
suite against the real PostgreSQL and Redis that config.devservices provides."""
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def main() -> int:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=BASE_DIR, env=env)
    if lint.returncode != 0:
        print("make test: ruff found problems (ruff check --fix . fixes most)", file=sys.stderr)
        return lint.returncode
    check = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"], cwd=BASE_DIR, env=env
    )
    if check.returncode != 0:
        print("make test: models and migrations are out of sync (run makemigrations)", file=sys.stderr)
        return check.returncode
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        print(f"make test: no Chromium at {chromium}, so the browser tests (tests/browser) will be SKIPPED.\n"
              "  To run them: sudo apt-get install -y chromium   (Debian/Ubuntu; .ci/run does this)\n"
              "  or point CHROMIUM_PATH at a Chromium/Chrome binary.", file=sys.stderr)
    return subprocess.run([sys.executable, "-m", "pytest", *sys.argv[1:]], cwd=BASE_DIR, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Set-up and run Kassa on a fresh machine that has only Python 3.11+.

    python3 dev.py serve [kassa serve options]   # start Kassa on the SQLite default
    python3 dev.py test  [pytest options]        # run the test suite (needs PostgreSQL)

Each installs what it needs first: uv (into .tools/, from PyPI) and then the locked
dependencies (uv.lock) into .venv/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
UV_VERSION = "0.13.8"


def uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    bin_dir = TOOLS / ("Scripts" if os.name == "nt" else "bin")
    local = bin_dir / "uv"
    if not local.exists():
        print(f"dev.py: installing uv {UV_VERSION} into {TOOLS}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
        subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"],
            check=True,
        )
    return str(local)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("serve", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    tool = uv()
    if command == "serve":
        subprocess.run([tool, "sync", "--frozen", "--no-dev"], cwd=ROOT, check=True)
        args = [tool, "run", "--frozen", "--no-dev", "kassa", "serve", *rest]
    else:
        subprocess.run([tool, "sync", "--frozen"], cwd=ROOT, check=True)
        args = [tool, "run", "--frozen", "pytest", *rest]
    return subprocess.run(args, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The suite needs nothing but the repository: a clone with no ``../shared`` beside it collects
the same tests as this tree, and collecting opens no file outside the clone.

The clone is the files git carries (tracked, and untracked but not ignored, as this working
tree holds them): in CI the tree is the commit, so this is what ``git clone`` gives; while
working, it is what the next commit will give.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYCACHE = Path(tempfile.gettempdir()) / "kassa-test-pycache"

# Collects the suite in the current folder under an audit hook that records every file opened
# (read, or imported) outside the folder and the interpreter, where it is under one of the
# watched folders: the one beside the repository (where ../shared lives) and the original tree.
COLLECT = """
import json, os, sys
from pathlib import Path

import pytest

here = Path.cwd().resolve()
inside = (here, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve())
watched = [Path(folder).resolve() for folder in sys.argv[1:]]
outside = set()


def watch(event, args):
    if event != "open" or isinstance(args[0], int):
        return
    path = Path(os.path.abspath(os.fsdecode(args[0])))
    if any(path.is_relative_to(f) for f in watched) and not any(
        path.is_relative_to(f) for f in inside
    ):
        outside.add(str(path))


sys.addaudithook(watch)
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider"])
import kassa, tests

for module in (kassa, tests):
    if not Path(module.__file__).resolve().is_relative_to(here):
        outside.add(module.__file__)
print("opened outside: " + json.dumps(sorted(outside)))
sys.exit(int(code))
"""


def files_git_carries() -> list[str]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    # A tracked file deleted in this tree is not in the next commit.
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def clone_to(target: Path) -> None:
    for name in files_git_carries():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name, follow_symlinks=False)


def start_collecting(tree: Path, watched: list[Path]) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    # Compiled modules go to a cache outside every tree (never beside the sources, as
    # PYTHONDONTWRITEBYTECODE wants): kept between runs, it makes collecting three times faster.
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(tree)])
    return subprocess.Popen(
        [sys.executable, "-c", COLLECT, *map(str, watched)],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def collected(process: subprocess.Popen[str]) -> tuple[list[str], list[str]]:
    """The test ids a collection listed and the files it opened outside its tree."""
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    lines = output.splitlines()
    (report,) = [line for line in lines if line.startswith("opened outside: ")]
    opened: list[str] = json.loads(report.removeprefix("opened outside: "))
    return [line for line in lines if "::" in line], opened


def test_a_clone_without_shared_beside_it_collects_the_whole_suite(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    clone = tmp_path / "kassa"
    clone_to(clone)
    assert not (tmp_path / "shared").exists()
    # Both collections at once: each takes a few seconds.
    in_clone = start_collecting(clone, [tmp_path, ROOT.parent])
    in_tree = start_collecting(ROOT, [ROOT.parent])
    try:
        clone_ids, clone_opened = collected(in_clone)
        tree_ids, tree_opened = collected(in_tree)
    finally:
        for process in (in_clone, in_tree):
            process.kill()
            process.wait()
        shutil.rmtree(PYCACHE / clone.relative_to(clone.anchor), ignore_errors=True)
    assert clone_opened == []
    assert tree_opened == []
    assert request.node.nodeid in tree_ids
    assert clone_ids == tree_ids

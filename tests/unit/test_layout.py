"""The layout checks anyone can run (README, "Where things are"):

    find streams -maxdepth 1 -name "*.py" | wc -l                  # at most 10
    find streams -name "*.py" | xargs wc -l | sort -n | tail -3    # none over 400
    grep -rnE "^\\s*(from|import) (tests|bench)\\b" streams          # nothing

A newcomer reads the top of streams/ as the roles and the few things every
role shares; everything else lives in a folder named for its concern.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "streams"
MAX_TOP_LEVEL_MODULES = 10
MAX_LINES = 400
# Modules over the limit on purpose, each with the reason it may be, and what
# removes it. Keep this empty: a module that grows past the limit is split.
OVER_THE_LIMIT: dict[str, int] = {}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_few_modules_at_the_top_of_the_package() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_module_is_over_the_line_limit() -> None:
    too_long = {}
    for path in _modules():
        name = str(path.relative_to(ROOT))
        lines = len(path.read_text("utf-8").splitlines())
        if lines > OVER_THE_LIMIT.get(name, MAX_LINES):
            too_long[name] = lines
    assert not too_long, f"split these (at most {MAX_LINES} lines each): {too_long}"
    for name, allowed in OVER_THE_LIMIT.items():
        lines = len((ROOT / name).read_text("utf-8").splitlines())
        assert lines > MAX_LINES, f"{name} is {lines} lines now: drop it from OVER_THE_LIMIT"
        assert allowed > MAX_LINES


def test_the_package_imports_nothing_from_tests_or_bench() -> None:
    offending = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] in ("tests", "bench"):
                    offending.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not offending, offending

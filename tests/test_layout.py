"""The source tree keeps the shape docs/architecture.md describes: imports go one way
(cli -> eval, ingest -> assistant), no import circles between modules or packages, only the CLI uses
typer and rich, and no module grows past ~400 lines. Read from the source (ast), so it needs no imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("assistant", "ingest", "eval", "cli")
# Which top-level packages each may import (the CLI is the edge: it may import everything).
ALLOWED = {"assistant": {"assistant"}, "ingest": {"ingest", "assistant"}, "eval": {"eval", "ingest", "assistant"},
           "cli": set(PACKAGES)}
UI = {"typer", "rich"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _own(name: str) -> str | None:
    """The project module `name` refers to (a module, or the package holding a name imported from it)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(project modules, other top-level packages) imported anywhere in the file, TYPE_CHECKING included."""
    own: set[str] = set()
    other: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            target = _own(name)
            if target:
                own.add(target)
            else:
                other.add(name.split(".")[0])
    return own, other


GRAPH = {m: _imports(p) for m, p in MODULES.items()}


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_imports_go_one_way() -> None:
    wrong = [f"{m} imports {d}" for m, (own, _) in GRAPH.items() for d in own
             if d.split(".")[0] not in ALLOWED[m.split(".")[0]]]
    assert not wrong, "assistant must not import ingest/eval/cli; ingest and eval must not import cli:\n" + \
        "\n".join(wrong)


def test_only_the_cli_uses_typer_and_rich() -> None:
    wrong = [m for m, (_, other) in GRAPH.items() if not m.startswith("cli") and other & UI]
    assert not wrong, f"library code reports progress through ingest.progress, not typer/rich: {wrong}"


def test_no_import_circle_between_modules() -> None:
    graph = {m: own - {m} for m, (own, _) in GRAPH.items()}
    assert _cycles(graph) == []


def test_no_import_circle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for m, (own, _) in GRAPH.items():
        for d in own:
            a, b = _package(m), _package(d)
            related = a == b or b.startswith(a + ".") or a.startswith(b + ".")  # a package and its parts
            if not related:
                graph.setdefault(a, set()).add(b)
    assert _cycles(graph) == []


def test_modules_stay_small() -> None:
    sizes = {p.relative_to(ROOT): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES.values()}
    big = {str(p): n for p, n in sizes.items() if n > MAX_LINES}
    assert not big, f"split these by concern (over {MAX_LINES} lines): {big}"

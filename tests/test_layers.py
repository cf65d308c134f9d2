"""The house rules, read from the imports of every module: layers point down only
(cli -> pipelines / model -> datagen / scenes -> schemas), no import circles, typer only in cli.py."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "vlm3r"
MAY_IMPORT = {
    "schemas": set(),
    "scenes": {"schemas"},
    "datagen": {"schemas"},
    "model": {"schemas"},
    "pipelines": {"schemas", "scenes", "datagen"},
    "cli": {"schemas", "scenes", "datagen", "model", "pipelines"},
}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (tests and dot-folders excluded)."""
    out = {}
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT)
        if rel.parts[0] == "tests" or any(part.startswith(".") for part in rel.parts):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = p
    return out


def imported(name: str, path: Path) -> set[str]:
    """Absolute names a module imports (relative imports resolved), at any depth of the file."""
    is_pkg = path.name == "__init__.py"
    package = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package[: len(package) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


def test_imports_point_down_only() -> None:
    mods = modules()
    broken = []
    for name, path in mods.items():
        me = layer(name)
        for target in imported(name, path):
            if not target.startswith(PACKAGE + ".") or target not in mods:
                continue
            other = layer(target)
            if me in MAY_IMPORT and other != me and other not in MAY_IMPORT[me]:
                broken.append(f"{name} imports {target}")
    assert not broken, "\n".join(broken)


def test_no_import_circles() -> None:
    mods = modules()
    graph = {n: {t for t in imported(n, p) if t in mods and t != n} for n, p in mods.items()}
    # a package's __init__ importing its own submodules is how registries load; skip parent->child edges
    graph = {n: {t for t in ts if not t.startswith(n + ".")} for n, ts in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for t in sorted(graph[n]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t] if t in stack else [n, t])
            elif t not in state:
                visit(t, [*stack, t])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_only_cli_imports_typer() -> None:
    users = [n for n, p in modules().items() if any(t == "typer" or t.startswith("typer.") for t in imported(n, p))]
    assert users == [f"{PACKAGE}.cli"]


def test_every_folder_says_what_it_may_import() -> None:
    for folder in MAY_IMPORT:
        if folder == "cli":
            continue
        doc = ast.get_docstring(ast.parse((ROOT / folder / "__init__.py").read_text(encoding="utf-8"))) or ""
        lines = doc.splitlines()
        assert len(lines) >= 2 and "import" in lines[1].lower(), f"{folder}/__init__.py: line 2 must say what it may import"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rules above could fail: a scenes module importing pipelines is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from vlm3r.pipelines.build import build\nfrom . import base\n")
    found = imported("vlm3r.scenes.bad", bad)
    assert "vlm3r.pipelines.build" in found and "vlm3r.scenes.base" in found
    assert layer("vlm3r.pipelines.build") not in MAY_IMPORT[layer("vlm3r.scenes.bad")]

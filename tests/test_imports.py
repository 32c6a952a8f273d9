"""The package's import graph, read from the source with `ast`: no circles, and no layer imports the CLI.

Every `import` and `from ... import ...` counts, at module level and inside functions alike (a circle through
a function-level import is still a circle: the function is in the wrong module). `from pkg import name`
counts as an import of `pkg.name` when that is a module, else of `pkg`; relative imports are resolved
against the importing module's package. Only modules under `src/unmask` are nodes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "unmask"

# the layers below the front ends: none of them may import the CLI's commands
LAYERS = ("unmask.serve", "unmask.predict", "unmask.data", "unmask.models", "unmask.losses", "unmask.train",
          "unmask.eval", "unmask.synth")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules under `unmask` that module `name` (at `path`) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()

    def add(target: str) -> None:
        # the deepest known module on the dotted path (`unmask.data.video.x` -> `unmask.data.video`)
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:
                full = f"{stem}.{alias.name}"
                add(full if full in known else stem)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None. Iterative DFS with white/grey/black colouring."""
    colour = dict.fromkeys(graph, 0)
    for start in sorted(graph):
        if colour[start]:
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        colour[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                colour[node] = 2
                continue
            nxt = todo.pop(0)
            if colour.get(nxt, 2) == 1:
                return path[path.index(nxt):] + [nxt]
            if colour.get(nxt, 2) == 0:
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    return None


def test_the_graph_is_read_from_every_kind_of_import():
    graph = import_graph()
    # function-level import (the CLI imports its commands lazily) and `from pkg import module`
    assert "unmask.commands.train" in graph["unmask.cli"] or any(
        m.startswith("unmask.commands") for m in graph["unmask.cli"])
    # relative imports resolve: the sources package imports its registry with `from ._registry import ...`
    assert any(m.startswith("unmask.data.sources.") for m in graph["unmask.data.sources"])


def test_find_cycle_finds_a_planted_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) in (
        ["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_the_cli(layer):
    graph = import_graph()
    bad = sorted(f"{mod} -> {dep}" for mod, deps in graph.items() if mod == layer or mod.startswith(layer + ".")
                 for dep in deps if dep == "unmask.commands" or dep.startswith("unmask.commands.")
                 or dep == "unmask.cli")
    assert not bad, f"{layer} imports the CLI: " + "; ".join(bad)


def test_the_data_layer_holds_no_synthetic_generator():
    """Generators live in unmask.synth, which sits above unmask.data: data neither defines one nor imports one."""
    graph = import_graph()
    modules = _modules()
    for name, path in modules.items():
        if not (name == "unmask.data" or name.startswith("unmask.data.")):
            continue
        assert not any(d == "unmask.synth" or d.startswith("unmask.synth.") for d in graph[name]), name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        generators = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("generate")]
        assert not generators, f"{name} defines {generators}: synthetic generators belong in unmask.synth"
    assert {"unmask.synth.masked", "unmask.synth.face", "unmask.synth.photo", "unmask.synth.dfer",
            "unmask.synth.micro"} <= set(modules)


# layers that must not reach up: (importer prefix, forbidden prefixes); docs/architecture.md draws them
FORBIDDEN = [
    ("unmask.predict", ("unmask.train", "unmask.serve", "unmask.experiments", "unmask.synth")),
    ("unmask.checkpoint", ("unmask.train", "unmask.predict", "unmask.serve")),
    ("unmask.serve", ("unmask.train", "unmask.experiments")),
    ("unmask.data", ("unmask.models", "unmask.losses", "unmask.train", "unmask.predict", "unmask.serve",
                     "unmask.synth", "unmask.experiments", "unmask.eval")),
    ("unmask.models", ("unmask.data", "unmask.losses", "unmask.train", "unmask.predict", "unmask.serve")),
    ("unmask.losses", ("unmask.data", "unmask.models", "unmask.train", "unmask.predict", "unmask.serve")),
    ("unmask.eval", ("unmask.models", "unmask.train", "unmask.predict", "unmask.serve")),
    ("unmask.synth", ("unmask.models", "unmask.losses", "unmask.train", "unmask.predict", "unmask.serve")),
]


@pytest.mark.parametrize("layer,forbidden", FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_layers_do_not_reach_up(layer, forbidden):
    def under(mod, prefix):
        return mod == prefix or mod.startswith(prefix + ".")

    graph = import_graph()
    bad = sorted(f"{mod} -> {dep}" for mod, deps in graph.items() if under(mod, layer)
                 for dep in deps if any(under(dep, f) for f in forbidden))
    assert not bad, "; ".join(bad)

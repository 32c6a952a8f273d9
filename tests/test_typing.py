"""Every public function and method of the package is fully annotated (the package ships ``py.typed``).

Public: a module-level function or a method of a module-level class whose names have no leading underscore
(methods of a private class are not public; nested functions are not counted). Fully annotated: every
parameter but ``self``/``cls`` has an annotation (``*args`` and ``**kwargs`` too), and so does the return
(``__init__`` excepted: mypy types it from its parameters). The type checker (``make typecheck``: mypy over
``src/unmask``, configured in pyproject.toml) then holds the annotations to the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "unmask"


def _missing(fn: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[str]:
    a = fn.args
    params = a.posonlyargs + a.args + a.kwonlyargs
    if method and params and not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list):
        params = params[1:]  # self / cls
    missing = [p.arg for p in params if p.annotation is None]
    missing += [f"*{v.arg}" for v in (a.vararg, a.kwarg) if v is not None and v.annotation is None]
    if fn.returns is None and fn.name != "__init__":
        missing.append("return")
    return missing


def public_functions(path: Path) -> list[tuple[str, list[str]]]:
    """``(qualified name, what is not annotated)`` for every public function and method of one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            out.append((node.name, _missing(node, method=False)))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for m in node.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                        not m.name.startswith("_") or m.name == "__init__"):
                    out.append((f"{node.name}.{m.name}", _missing(m, method=True)))
    return out


def untyped(root: Path = ROOT) -> list[str]:
    return [f"{p.relative_to(SRC)}:{name} ({', '.join(miss)})" for p in sorted(root.rglob("*.py"))
            for name, miss in public_functions(p) if miss]


def test_the_counter_sees_what_is_missing(tmp_path):
    (tmp_path / "m.py").write_text(
        "def a(x: int) -> int: ...\n"
        "def b(x, *args: int) -> None: ...\n"
        "def c(x: int): ...\n"
        "def _private(x): ...\n"
        "class K:\n"
        "    def __init__(self, n: int): ...\n"
        "    def m(self, y, **kw) -> None: ...\n"
        "    @staticmethod\n"
        "    def s(z: int) -> int: ...\n"
        "    @classmethod\n"
        "    def c(cls) -> K: ...\n"
        "class _Hidden:\n"
        "    def m(self, y): ...\n")
    got = dict(public_functions(tmp_path / "m.py"))
    assert got == {"a": [], "b": ["x"], "c": ["return"], "K.__init__": [], "K.m": ["y", "*kw"], "K.s": [],
                   "K.c": []}


def test_every_public_function_is_fully_annotated():
    missing = untyped()
    assert not missing, f"{len(missing)} public function(s) not fully annotated:\n" + "\n".join(missing)


def test_registered_factories_annotations_resolve_at_run_time():
    """`coerce_kwargs` and `default_loss_of` read the factories' annotations with `typing.get_type_hints`: every
    name in them must be importable where the factory lives (not only under TYPE_CHECKING), or the YAML scalar
    coercion would be skipped silently."""
    import typing

    import unmask.losses
    import unmask.models
    from unmask.models._registry import BACKBONES, MODELS

    for registry in (MODELS, BACKBONES, unmask.losses.LOSSES):
        for name in registry.names():
            typing.get_type_hints(registry.get(name))  # NameError / TypeError: an unresolvable annotation
    assert unmask.models.list_models() and unmask.losses.list_losses()

"""The arrows of docs/ARCHITECTURE.md, read from the imports of every module of the
package (static: `import` and `from ... import` anywhere in a module, TYPE_CHECKING blocks
and function bodies included), so that they stay held:

    domain    jobs, codec, clock, errors, keys, history, board, series, endpoints/
              imports no store, gateway, fleet, worker, SD, logs shipper, CLI or server
    store     imports the domain only
    gateway   imports store and domain; never the fleet (board.py is the contract)
    fleet     imports domain, store, logs; never the gateway, the worker runtime or SD
    worker    imports no gateway, store, fleet or SD (the CLI picks SD's handler)
    sd        imports no gateway, store, fleet, logs or CLI
    logs      imports the domain only
    server    the one module that imports both gateway and fleet (with the CLI above it)

and, between the top-level packages, no import cycle. `__main__` modules are entry points,
like the CLI: they may import anything.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "podium"

DOMAIN = ("jobs", "codec", "clock", "errors", "keys", "history", "board", "series", "endpoints")
EVERYTHING_ELSE = ("store", "gateway", "fleet", "worker", "sd", "logs", "cli", "server", "demo")

# top-level part of podium.X -> the parts it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    **{d: EVERYTHING_ELSE for d in DOMAIN},
    "store": ("gateway", "fleet", "worker", "sd", "cli", "server", "demo", "settings"),
    "gateway": ("fleet", "worker", "cli", "server", "demo"),
    "fleet": ("gateway", "worker", "sd", "cli", "server", "demo"),
    "worker": ("gateway", "store", "fleet", "sd", "cli", "server", "demo", "settings"),
    "sd": ("gateway", "store", "fleet", "logs", "cli", "server", "demo"),
    "logs": ("gateway", "store", "fleet", "worker", "sd", "cli", "server", "demo", "settings"),
}
# Allowed exceptions, each with its reason.
ALLOWED = {
    # the SD input schema is pure data (no torch): /run checks inputs against it
    ("gateway", "podium.sd.schema"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, module: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = module.split(".")[: -node.level]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return {m for m in found if m == "podium" or m.startswith("podium.")}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = _modules()
GRAPH = {m: _imports(p, m) for m, p in MODULES.items() if not m.endswith("__main__")}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_module_imports_point_down(module: str) -> None:
    layer = _top(module)
    bad = sorted(
        target
        for target in GRAPH[module]
        if _top(target) in FORBIDDEN.get(layer, ())
        and (layer, target) not in ALLOWED
        and target in MODULES  # `from podium.x import name`: the module is podium.x
    )
    assert not bad, f"{module} ({layer}) imports {bad}"


def test_no_import_cycle_between_top_level_parts() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in GRAPH.items():
        for target in targets:
            if target in MODULES and _top(target) and _top(target) != _top(module):
                edges[_top(module)].add(_top(target))
    seen: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> None:
        if node in stack:
            cycle = [*stack[stack.index(node) :], node]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if node in seen:
            return
        stack.append(node)
        for nxt in sorted(edges[node]):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for node in sorted(edges):
        visit(node)


def test_the_server_is_the_one_place_that_wires_gateway_and_fleet() -> None:
    both = sorted(
        m
        for m, targets in GRAPH.items()
        if {_top(t) for t in targets} >= {"gateway", "fleet"} and _top(m) not in ("cli",)
    )
    assert both == ["podium.server"]

"""The layer order as a test: read from the source (no module is imported), every import in engine/,
consumers/ and schemas/ points down the order or stays in its own layer, so the design stays visible."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterable

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("engine", "consumers", "schemas")

# Bottom to top: a module may import from its own layer and the layers below it, never above.
LAYERS: tuple[str, ...] = (
    "automem.schemas",  # events, streams, codec, structure, errors: the data everything shares
    "automem.engine.memory",  # the pure fold of memory operations into a state
    "automem.engine.files",  # files beside the log: checked room, one-line failures, no half-written file
    "automem.engine.log",  # the log port and its backends (engine.log.lmdb, engine.log.kafka)
    "automem.engine.envs",  # the games behind one contract
    "automem.engine.policy",  # the Policy port, spec parsing, backends
    "automem.engine.agent",  # the episode step machine, parser, prompts
    "automem.engine.structure",  # seeds, check, diff, the structure registry
    "automem.engine.episodes",  # the one reader of a recorded episode, replay, time travel
    "automem.engine.models",  # the model registry, versions, promotion
    "automem.engine.rollout",  # playing episodes: request, drive, bus
    "automem.engine.audit",
    "automem.engine.scoring",
    "automem.engine.dataset",
    "automem.engine.training",
    "automem.engine.evaluation",
    "automem.engine.probes",  # memory probes: questions about an episode's past, asked off its trajectory
    "automem.engine.protocol",  # published protocols (BALROG's) and the rows to compare with
    "automem.engine.views",  # what the terminal and the pages show
    "automem.engine.evolve",  # loop 1
    "automem.engine.loop",  # plan, stages, drive
    "automem.consumers",  # the services
    "automem.bench",  # benchmarks of everything below, run by `automem bench`
    "automem.engine.cli",  # the commands, on top of everything
)

# Modules that hold pure logic: none of them may reach a storage backend or a model runtime.
PURE = (
    "automem.engine.memory",
    "automem.engine.agent.parser",
    "automem.engine.agent.prompts",
    "automem.engine.scoring.credit",
    "automem.engine.structure.check",
    "automem.engine.evaluation.paired",
    "automem.engine.agent.instructions",
    "automem.engine.protocol.published",
    "automem.engine.probes.kinds",
    "automem.engine.probes.check",
)
BACKENDS = ("automem.engine.log.lmdb", "automem.engine.log.kafka", "lmdb", "kafka", "torch", "transformers", "vllm")


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is written, and whether it runs when the module loads."""

    importer: str
    imported: str
    path: Path
    line: int
    at_load: bool  # False inside a function or under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} {self.importer} -> {self.imported}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("automem", *(parts[:-1] if parts[-1] == "__init__" else parts)))


@cache
def modules() -> dict[str, Path]:
    """Every module of the scanned packages by its installed name."""
    return {module_name(p): p for root in SCANNED for p in sorted((ROOT / root).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> list[str]:
    """The modules an import names: `from a.b import c` names a.b.c where c is a module, else a.b."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: resolved against the importer's package
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
    known = modules()
    return list(dict.fromkeys(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names))


def _collect(nodes: Iterable[ast.AST], importer: str, path: Path, at_load: bool, found: list[Import]) -> None:
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _targets(node, importer, path.name == "__init__.py"):
                found.append(Import(importer, target, path, node.lineno, at_load))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _collect(ast.iter_child_nodes(node), importer, path, False, found)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            _collect(node.body, importer, path, False, found)
            _collect(node.orelse, importer, path, at_load, found)
        else:
            _collect(ast.iter_child_nodes(node), importer, path, at_load, found)


@cache
def imports() -> tuple[Import, ...]:
    """Every import in the scanned packages: at module level, in functions, under TYPE_CHECKING."""
    found: list[Import] = []
    for name, path in modules().items():
        _collect(ast.parse(path.read_text(), str(path)).body, name, path, True, found)
    return tuple(found)


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer(module: str) -> int | None:
    """The index in LAYERS of the deepest layer holding the module; None outside them (third-party modules)."""
    held = [i for i, name in enumerate(LAYERS) if within(module, name)]
    return max(held, key=lambda i: len(LAYERS[i])) if held else None


def report(title: str, edges: list[Import]) -> str:
    return "\n".join([f"{title} ({len(edges)}):", *(f"  {edge}" for edge in edges)])


def test_every_scanned_module_is_in_a_layer() -> None:
    # engine/__init__.py only makes engine a package: it belongs to no layer, so it may import nothing
    assert [m for m in modules() if layer(m) is None] == ["automem.engine"]
    assert [str(i) for i in imports() if i.importer == "automem.engine"] == []


def test_every_automem_import_names_a_layer() -> None:
    unplaced = [i for i in imports() if within(i.imported, "automem") and layer(i.imported) is None]
    assert not unplaced, report("imports of automem modules in no layer: add the package to LAYERS", unplaced)


def test_no_import_points_up_the_layers() -> None:
    upward = [i for i in imports() if (above := layer(i.imported)) is not None and above > (layer(i.importer) or 0)]
    assert not upward, report("imports that point up the layer order (LAYERS in this file)", upward)


def test_only_the_cli_imports_the_consumers() -> None:
    offending = [
        i
        for i in imports()
        if within(i.imported, "automem.consumers")
        and within(i.importer, "automem.engine")
        and not within(i.importer, "automem.engine.cli")
    ]
    assert not offending, report("engine modules that import consumers (only engine.cli may)", offending)


def _reached_at_load(start: str) -> dict[str, Import]:
    """Every module the start module loads through module-level imports of scanned modules, with the import
    that first reached it."""
    by_importer: dict[str, list[Import]] = {}
    for i in imports():
        if i.at_load:
            by_importer.setdefault(i.importer, []).append(i)
    reached: dict[str, Import] = {}
    todo = [start]
    while todo:
        for i in by_importer.get(todo.pop(), []):
            if i.imported not in reached:
                reached[i.imported] = i
                if i.imported in modules():
                    todo.append(i.imported)
    return reached


@pytest.mark.parametrize("pure", PURE)
def test_pure_modules_import_no_backend(pure: str) -> None:
    members = [m for m in modules() if within(m, pure)]
    assert members, f"{pure} names no module: update PURE"
    direct = [i for i in imports() if i.importer in members and any(within(i.imported, b) for b in BACKENDS)]
    assert not direct, report(f"{pure} imports a backend", direct)
    loaded = sorted(
        {
            str(edge)
            for m in members
            for target, edge in _reached_at_load(m).items()
            if any(within(target, b) for b in BACKENDS)
        }
    )
    assert not loaded, "\n".join([f"loading {pure} loads a backend, through (import that reached it):", *loaded])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_layers() -> None:
    """A graph of the layers, an edge wherever a module of one imports a module of another as it loads."""
    edges: dict[tuple[str, str], list[Import]] = {}
    for i in imports():
        if i.at_load and (a := layer(i.importer)) is not None and (b := layer(i.imported)) is not None and a != b:
            edges.setdefault((LAYERS[a], LAYERS[b]), []).append(i)
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    cycles = _cycles(graph)
    lines = []
    for component in cycles:
        # every cycle between layers holds an import up the order: those are the ones to cut
        cut = [
            i
            for (a, b), found in sorted(edges.items())
            if a in component and b in component and LAYERS.index(b) > LAYERS.index(a)
            for i in found
        ]
        lines += [f"cycle between {', '.join(component)}; its imports up the order:", *(f"  {i}" for i in cut)]
    assert not cycles, "\n".join(lines)


def test_every_package_says_what_it_owns_and_what_it_may_import() -> None:
    """Each package's __init__ opens with a docstring that names what it may import, and holds no logic."""
    for path in sorted(p for root in SCANNED for p in (ROOT / root).rglob("__init__.py")):
        tree = ast.parse(path.read_text())
        where = path.relative_to(ROOT)
        doc = ast.get_docstring(tree)
        assert doc and "May import" in doc, f"{where}: no docstring saying what it may import"
        logic = [n for n in tree.body[1:] if not isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign))]
        assert not logic, f"{where}: an __init__ re-exports, it holds no logic ({type(logic[0]).__name__})"

"""The house's rules, checked on the source (docs/ARCHITECTURE.md argues them): imports flow one way, from
the tools down through the layers below, with no cycle; tools import the library, never the reverse; only
the tools parse command lines and have a ``main``; every package says its job and what it may import.

Every import is read with ``ast``, lazy ones inside functions included (a lazy import is still a
dependency; it only hides a cycle). Imports under ``if TYPE_CHECKING:`` are left out: they never run, and
annotating with a type from a higher layer creates no dependency at run time.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO_ROOT

SASV = REPO_ROOT / "sasv"

# Lowest first. A module may import modules of its own layer and of the layers below it; the top-level
# shared modules are named one by one, packages by their folder.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {"errors", "fileio", "locking", "progress", "arg_types", "cli", "audio", "exp_layout", "markers"}
    ),
    frozenset({"runtime", "corpora"}),
    frozenset({"metrics"}),
    frozenset({"models"}),
    frozenset({"provenance"}),
    frozenset({"extraction"}),
    frozenset({"jobs"}),
    frozenset({"stages"}),
    frozenset({"scoring"}),
    frozenset({"reports"}),
    frozenset({"train"}),
    frozenset({"bin", "__main__", "__init__"}),
)
PARSERS_ALLOWED = {"sasv.cli"}  # the recipe's ArgumentParser; everything else parses in sasv.bin


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SASV.rglob("*.py")):
        name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The sasv modules ``tree`` imports (``from pkg import module`` counts as the module)."""
    out: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("sasv"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "sasv")
        stack.extend(ast.iter_child_nodes(node))
    return {m for m in out if m in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(ast.parse(path.read_text()), modules) - {name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    """The layer of ``sasv.<part>...``: its package's, or the top-level module's own."""
    part = module.split(".")[1] if "." in module else "__init__"
    for rank, members in enumerate(LAYERS):
        if part in members:
            return rank
    raise AssertionError(
        f"{module}: in no layer of tests/test_architecture.py (place it, and say why in docs)"
    )


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        layer_of(module)


def test_imports_go_down_the_layers_only() -> None:
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in _graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_library_never_imports_a_tool() -> None:
    bad = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if not module.startswith(("sasv.bin", "sasv.__main__"))
        for target in targets
        if target.startswith("sasv.bin")
    ]
    assert not bad, "\n".join(bad)


def test_only_the_tools_parse_command_lines_and_have_a_main() -> None:
    offenders = []
    for module, path in _modules().items():
        if module.startswith("sasv.bin") or module == "sasv.__main__":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "main" and node in tree.body:
                offenders.append(f"{module}: def main (a tool belongs in sasv/bin)")
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if "argparse" in names and module not in PARSERS_ALLOWED:
                offenders.append(f"{module}: imports argparse (parsing belongs in sasv/bin)")
    assert not offenders, "\n".join(offenders)


def test_every_package_says_its_job_and_what_it_may_import() -> None:
    missing = []
    for init in sorted(SASV.rglob("__init__.py")):
        if init.parent == SASV or init.parent.name == "bin":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        if "May import" not in doc:
            missing.append(str(init.relative_to(REPO_ROOT)))
    assert not missing, f"no 'May import: ...' in the docstring of {missing}"


def test_layers_by_package_match_the_architecture_doc() -> None:
    """docs/ARCHITECTURE.md lists the layers in this order (one line per layer, lowest first)."""
    doc = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    positions = defaultdict(list)
    for rank, members in enumerate(LAYERS):
        for member in members - {"__init__", "__main__"}:
            token = f"`{member}/`" if (SASV / member).is_dir() else f"`{member}`"
            assert token in doc, f"docs/ARCHITECTURE.md does not name {token} in its layers"
            positions[rank].append(doc.index(token))
    order = [min(positions[r]) for r in sorted(positions)]
    assert order == sorted(order), "docs/ARCHITECTURE.md lists the layers in another order"

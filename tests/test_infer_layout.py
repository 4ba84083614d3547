"""The inference package's shape: no import cycles, one module per job."""

from __future__ import annotations

import ast
from pathlib import Path

INFER = Path(__file__).resolve().parents[1] / "infer"
PACKAGE = "gender_cli.infer"


def imports_of(path: Path) -> set[str]:
    """The ``gender_cli.infer`` modules a file imports, at the top or inside a function
    (a lazy import still ties two modules together), type-checking imports left out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    type_checking = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                     and getattr(branch.test, "id", "") == "TYPE_CHECKING" for node in ast.walk(branch)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                found.update(f"{PACKAGE}.{alias.name}" for alias in node.names)
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith(PACKAGE + "."))
    return {name.split(".")[2] for name in found}


def graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in INFER.glob("*.py") if path.stem != "__init__"}
    return {name: imports_of(path) & set(modules) - {name} for name, path in modules.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles_in_infer():
    edges = graph()
    assert {"classify", "request", "engine", "engine_local", "engine_ray", "writer", "rows"} <= set(edges)
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_the_cycle_finder_finds_a_lazy_import_cycle(tmp_path):
    """The check above can fail: a function-level import back is a cycle too."""
    (tmp_path / "a.py").write_text("from gender_cli.infer.b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from gender_cli.infer import a\n")
    edges = {"a": imports_of(tmp_path / "a.py"), "b": imports_of(tmp_path / "b.py")}
    assert find_cycle(edges) == ["a", "b", "a"]


def test_the_writers_and_engines_depend_on_their_interfaces_never_the_reverse():
    edges = graph()
    assert not edges["writer"] & {"writer_text", "writer_parquet"}  # chosen by name from writer.FORMATS
    assert "classify" not in edges["engine_local"] | edges["engine_ray"]
    assert not edges["rows"] & {"classify", "engine_local", "engine_ray", "writer"}

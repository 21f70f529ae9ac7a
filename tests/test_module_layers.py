"""The package's modules import each other without a cycle.

Only module-level imports count: a module that needs an optional library's
module (models: pydantic; frames: pyarrow) imports it inside the function
that first needs it, which is how ``import bfast_archive`` stays cheap.
"""
import ast
import pathlib

import bfast_archive

PACKAGE = pathlib.Path(bfast_archive.__file__).parent


def _module_level_imports(path: pathlib.Path) -> set[str]:
    """The package modules ``path`` imports at module level (relative imports)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # from . import a, b
                found.update(alias.name for alias in node.names)
    return {name for name in found if (PACKAGE / f"{name}.py").exists()}


def _graph() -> dict[str, set[str]]:
    return {p.stem: _module_level_imports(p) for p in PACKAGE.glob("*.py")
            if p.stem != "__init__"}


def test_no_module_level_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph.get(name, ())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [name, dep]))
            if dep not in state:
                visit(dep, path + [name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_reader_layers_point_one_way():
    """The reader's layers: snapshot, arrays, decoding, views, tables, archive,
    each importing only those before it."""
    graph = _graph()
    layers = ["_snapshot", "arrays", "_decode", "views", "tables", "archive"]
    for i, name in enumerate(layers):
        above = set(layers[i + 1:])
        assert not graph[name] & above, f"{name} imports {graph[name] & above}"
    assert "reader" not in graph  # split into the layers above


def test_the_check_sees_a_cycle(tmp_path):
    """The cycle finder itself: two modules importing each other are found."""
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("from . import a\n")
    global PACKAGE
    saved = PACKAGE
    PACKAGE = tmp_path
    try:
        try:
            test_no_module_level_import_cycle()
        except AssertionError as exc:
            assert "a -> b -> a" in str(exc)
        else:
            raise AssertionError("the cycle was not found")
    finally:
        PACKAGE = saved

"""One module talks to the compiled core: every other module of the package
gets ffi/lib (and the GIL-holding ctypes prototypes) from _native, and a core
failure on arguments the library built itself is an InternalError."""
import ast
import pathlib

import pytest

import bfast_archive as bfa
from bfast_archive import _native
from bfast_archive.errors import InternalError

PACKAGE = pathlib.Path(bfa.__file__).resolve().parent


def _imports_of(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names.update(f"{node.module or ''}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_only_native_imports_the_compiled_core():
    importers = sorted(p.name for p in PACKAGE.glob("*.py")
                       if any("_bfa_core" in name for name in _imports_of(p)))
    assert importers == ["_native.py"]


def test_only_native_makes_ctypes_prototypes():
    users = sorted(p.name for p in PACKAGE.glob("*.py") if "PYFUNCTYPE" in p.read_text())
    assert users == ["_native.py"]


def test_internal_failure_is_a_bfast_error_and_a_runtime_error():
    with pytest.raises(InternalError, match="chunk encoding failed: invalid argument") as info:
        _native.check_internal(_native.lib.BFA_E_ARG, "chunk encoding")
    assert isinstance(info.value, bfa.BfastError) and isinstance(info.value, RuntimeError)
    assert _native.check_internal(7, "anything") == 7

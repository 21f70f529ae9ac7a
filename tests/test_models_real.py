"""Pydantic models as applications write them (issue 12): aliases,
serializers, the field types pydantic can serialise, sets and enum keys,
container models, and the same type checks on every read path."""
import subprocess
import sys

import bfast_archive as bfa


def test_schema_mismatch_error_is_caught_without_importing_pydantic():
    code = ("import sys, bfast_archive as bfa, bfast_archive.errors as e; "
            "assert bfa.SchemaMismatchError is e.SchemaMismatchError; "
            "assert issubclass(e.SchemaMismatchError, bfa.ArchiveError); "
            "print('pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_schema_mismatch_error_is_re_exported_from_models():
    from bfast_archive import errors, models

    assert models.SchemaMismatchError is errors.SchemaMismatchError is bfa.SchemaMismatchError

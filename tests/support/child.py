"""Child Python processes started by tests and test support: the environment
that lets a ``python -c`` child import ``tests.support`` (and this tree's
``bfast_archive``) without patching ``sys.path``."""
from __future__ import annotations

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def python_env() -> dict[str, str]:
    """A copy of ``os.environ`` with the repository root first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env

"""Archives left in cyclic garbage at interpreter exit must not crash it.

CPython crashed (SIGSEGV in the final garbage collection) when a cffi buffer
exported from a memoryview and that memoryview were both left in uncollected
cyclic garbage at exit. The reader now exports from the object underneath and
caches no view on the archive; these tests run the shapes that crashed.
"""
import subprocess
import sys

import pytest

SCRIPT = """
import gc, sys
gc.disable()                       # leave every cycle to the final collection
import numpy as np
import bfast_archive as bfa
path, source = sys.argv[1], sys.argv[2]
bfa.dump({"users": [{"a": i, "b": "x"} for i in range(10)], "e": np.zeros(10),
          "b": b"x" * 100}, path)
raw = open(path, "rb").read()
if source == "file":
    arch = bfa.Archive.open(path)
elif source == "bytes":
    arch = bfa.Archive.from_buffer(raw)
elif source == "memoryview":
    arch = bfa.Archive.from_buffer(memoryview(bytearray(raw)))
else:
    arch = bfa.Archive.from_buffer(memoryview(bytearray(b"--" + raw))[2:])
class Holder: pass
h = Holder(); h.me = h; h.arch = arch
h.root = arch.root; h.table = arch["users"]; h.row = arch["users"][3]
h.array = arch["e"]; h.blob = arch["b"]
del arch
print("done")
"""


@pytest.mark.parametrize("source", ["file", "bytes", "memoryview", "memoryview-slice"])
def test_cyclic_garbage_at_exit_does_not_crash(tmp_path, source):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "a.bfa"), source],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done"
    assert "Exception ignored" not in out.stderr

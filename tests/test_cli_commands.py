"""The command line tool, driven as a user drives it: `python -m bfast_archive ...`
in a subprocess; output and exit codes checked. Also `inspect`, `get`, `verify`."""
import base64
import json
import subprocess
import sys

import numpy as np
import pytest

import bfast_archive as bfa


def cli(*args, check_rc=None):
    out = subprocess.run([sys.executable, "-m", "bfast_archive", *map(str, args)],
                         capture_output=True, timeout=120)
    if check_rc is not None:
        assert out.returncode == check_rc, (out.returncode, out.stdout, out.stderr)
    return out


def text(out):
    return out.stdout.decode(), out.stderr.decode()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "data.bfa"
    data = {"meta": {"name": "run-7", "lr": 1e-3},
            "users": [{"id": i, "name": f"user-{i}", "tags": ["a", "b"]} for i in range(2000)],
            "emb": np.arange(60_000, dtype=np.float32).reshape(20_000, 3),
            "small": np.arange(6, dtype=np.int16).reshape(2, 3),
            "blob": bytes(range(256)) * 4,
            "mixed": [1, "two", (3, 4), None, 2.5],
            7: "int key",
            "needle": "needle-string-for-corruption-tests"}
    bfa.dump(data, path)
    return path


def test_help_on_every_subcommand():
    out, _ = text(cli("--help", check_rc=0))
    for command in ("inspect", "get", "convert", "verify", "demo"):
        assert command in out
    for command in ("inspect", "get", "convert", "verify", "demo"):
        out, err = text(cli(command, "--help", check_rc=0))
        assert out.startswith(f"usage: bfast-archive {command}") and not err


def test_usage_errors_exit_2():
    out = cli()
    assert out.returncode == 2 and b"usage:" in out.stderr
    assert cli("frobnicate").returncode == 2
    assert cli("get", "only-one-arg").returncode == 2


def test_inspect_tree(archive):
    out, err = text(cli("inspect", archive, check_rc=0))
    assert not err
    lines = out.splitlines()
    assert lines[0].startswith(f"{archive}: ") and "format 1." in lines[0]
    assert "uncompressed" in lines[0]
    assert lines[1].startswith("root: dict, 8 keys, ")
    assert "├── meta: dict, 2 keys" in out
    assert "│   ├── name: str, 5 B = 'run-7'" in out
    assert "users: table, 2,000 rows x 3 columns (id, name, tags), ~" in out
    assert "... 1,999 more rows" in out
    assert "emb: ndarray float32 (20000, 3), 234.4 KiB" in out
    assert "small: ndarray int16 (2, 3), 12 B" in out
    assert "blob: bytes, 1.0 KiB" in out
    assert "7: str, 7 B = 'int key'" in out
    assert "... 2 more items" in out            # mixed: 3 of 5 shown


def test_inspect_path_and_depth(archive):
    out, _ = text(cli("inspect", archive, "users/5", "--depth", "1", check_rc=0))
    assert out.splitlines()[1] == "users/5: dict, 3 keys, 26 B"
    assert "├── id: int = 5" in out and "└── tags: list, 2 items" in out
    out, _ = text(cli("inspect", archive, "--depth", "0", check_rc=0))
    assert len(out.splitlines()) == 3 and "use --depth" in out
    out, _ = text(cli("inspect", archive, "--depth", "1", check_rc=0))
    assert "name: str" not in out and "meta: dict" in out


def test_get_values_as_json(archive):
    def get(path):
        out, err = text(cli("get", archive, path, check_rc=0))
        assert not err
        return json.loads(out)

    assert get("meta/lr") == 1e-3
    assert get("meta") == {"name": "run-7", "lr": 1e-3}
    assert get("users/3/name") == "user-3"
    assert get("users/-1") == {"id": 1999, "name": "user-1999", "tags": ["a", "b"]}
    assert get("7") == "int key"
    assert get("mixed") == [1, "two", [3, 4], None, 2.5]
    emb = get("emb")
    assert emb["type"] == "ndarray" and emb["dtype"] == "float32"
    assert emb["shape"] == [20000, 3] and "..." in emb["summary"]
    assert get("small")["data"] == [[0, 1, 2], [3, 4, 5]]
    blob = get("blob")
    assert blob["length"] == 1024 and base64.b64decode(blob["base64"]) == bytes(range(256)) * 4
    assert set(get("")) == {"meta", "users", "emb", "small", "blob", "mixed", "7", "needle"}


def test_get_raw(archive):
    out = cli("get", archive, "emb", "--raw", check_rc=0)
    assert out.stdout == np.arange(60_000, dtype=np.float32).tobytes()
    assert cli("get", archive, "blob", "--raw", check_rc=0).stdout == bytes(range(256)) * 4
    assert cli("get", archive, "users/3/name", "--raw", check_rc=0).stdout == b"user-3"
    out = cli("get", archive, "meta", "--raw", check_rc=1)
    assert out.stdout == b"" and out.stderr.decode().startswith(f"bfast-archive: {archive}: ")


@pytest.mark.parametrize("path, problem", [
    ("nope", "no key 'nope' in the dict at the root"),
    ("users/2000", "index 2000 out of range for the list at users (2,000 items)"),
    ("users/x", "'x' is not an index into the list at users"),
    ("meta/lr/deeper", "the value at meta/lr is a float, not a dict, list or array"),
])
def test_get_bad_path(archive, path, problem):
    out, err = text(cli("get", archive, path, check_rc=1))
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"bfast-archive: {archive}: ") and problem in err


def test_bad_input_files(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("just some text, long enough to hold a header of 64 bytes ......." * 2)
    tiny = tmp_path / "tiny.bfa"
    tiny.write_bytes(b"\x89BFA")
    cases = [(tmp_path / "missing.bfa", "no such file or directory"),
             (notes, "not a bfast archive"),
             (tiny, "truncated"),
             (tmp_path, "is a directory")]
    for path, problem in cases:
        for command in (("inspect", path), ("get", path, "a"),
                        ("convert", path, tmp_path / "o.json", "--from", "bfa")):
            out, err = text(cli(*command))
            assert out == "", command
            assert err.startswith(f"bfast-archive: {path}: ") and problem in err, (command, err)
            assert err.count("\n") == 1 and "Traceback" not in err


def test_verify_ok_and_failed(archive, tmp_path):
    out, err = text(cli("verify", archive, check_rc=0))
    assert out.startswith(f"OK: {archive}: ") and out.count("\n") == 1 and not err
    assert "2 arrays" in out
    raw = bytearray(archive.read_bytes())
    at = raw.index(b"needle-string-for-corruption-tests")
    raw[at + 3] = 0xFF                           # invalid UTF-8 (and a checksum mismatch)
    bad = tmp_path / "bad.bfa"
    bad.write_bytes(bytes(raw))
    truncated = tmp_path / "truncated.bfa"
    truncated.write_bytes(archive.read_bytes()[:5000])
    out, err = text(cli("verify", bad, check_rc=1))
    assert err.startswith(f"FAILED: {bad}: ") and err.count("\n") == 1 and not out
    out, err = text(cli("verify", archive, truncated, tmp_path / "missing.bfa", check_rc=1))
    assert out.startswith("OK: ") and out.count("\n") == 1
    lines = err.splitlines()
    assert lines[0].startswith(f"FAILED: {truncated}: ") and "truncated" in lines[0]
    assert lines[1] == f"FAILED: {tmp_path / 'missing.bfa'}: no such file or directory"


def test_verify_detects_a_flipped_payload_byte_when_checksummed(archive, tmp_path):
    if not hasattr(bfa.Archive, "verify"):
        pytest.skip("this version writes no checksums")
    raw = bytearray(archive.read_bytes())
    emb = np.arange(60_000, dtype=np.float32).tobytes()
    at = raw.index(emb[4000:4064])
    raw[at] ^= 0x40                              # a valid float either way: only a checksum sees it
    bad = tmp_path / "flipped.bfa"
    bad.write_bytes(bytes(raw))
    _, err = text(cli("verify", bad, check_rc=1))
    assert err.startswith(f"FAILED: {bad}: ")


def test_demo_subcommand_is_wired(monkeypatch):
    """`demo` takes minutes on purpose: check the plumbing in-process."""
    from bfast_archive import cli as cli_module
    from bfast_archive import demo

    seen = []
    monkeypatch.setattr(demo, "run", lambda runs=3: seen.append(runs))
    assert cli_module.main(["demo", "--runs", "2"]) == 0
    assert cli_module.main(["demo"]) == 0
    assert seen == [2, 3]

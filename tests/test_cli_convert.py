"""`bfast-archive convert`, in a subprocess: JSON, JSON Lines, MessagePack, .npz and
.npy to an archive and back, compression, progress only on a terminal, errors."""
import inspect
import json
import os

import numpy as np

import bfast_archive as bfa
from tests.support.cli import cli, convert_on_a_terminal, one_error_line

DATA = {"name": "run-7", "lr": 0.001, "ok": True, "none": None, "big": 2 ** 80,
        "users": [{"id": i, "name": f"u{i}", "tags": ["x"] * (i % 3)} for i in range(50)],
        "nested": {"a": [1, [2, [3, {"b": "ü€😀"}]]]}}


def test_json_round_trip(tmp_path):
    src, arc, back = tmp_path / "in.json", tmp_path / "out.bfa", tmp_path / "back.json"
    src.write_text(json.dumps(DATA))
    out = cli("convert", src, arc, check_rc=0)
    assert out.stdout == b"" and out.stderr == b""          # quiet when not a terminal
    assert bfa.load(arc) == DATA
    cli("convert", arc, back, check_rc=0)
    assert json.loads(back.read_text()) == DATA


def test_jsonl_round_trip(tmp_path):
    rows = [{"id": i, "v": [i, i * 0.5]} for i in range(100)]
    src, arc, back = tmp_path / "in.jsonl", tmp_path / "out.bfa", tmp_path / "back.jsonl"
    src.write_text("\n".join(map(json.dumps, rows)) + "\n\n")   # a blank line is skipped
    cli("convert", src, arc, check_rc=0)
    assert bfa.load(arc) == rows
    cli("convert", arc, back, check_rc=0)
    assert [json.loads(line) for line in back.read_text().splitlines()] == rows
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ok": 1}\n{"broken": \n')
    assert "line 2: invalid JSON" in one_error_line(cli("convert", bad, tmp_path / "x.bfa"), bad)


def test_jsonl_output_needs_a_list(tmp_path):
    arc = tmp_path / "d.bfa"
    bfa.dump({"a": 1}, arc)
    err = one_error_line(cli("convert", arc, tmp_path / "x.jsonl"), tmp_path / "x.jsonl")
    assert "root is a list" in err and not (tmp_path / "x.jsonl").exists()


def test_msgpack_to_archive(tmp_path):
    import msgpack
    src, arc = tmp_path / "in.msgpack", tmp_path / "out.bfa"
    value = {"name": "x", "blob": b"\x00\x01", "n": [1, 2.5, None], 3: "int key"}
    src.write_bytes(msgpack.packb(value))
    cli("convert", src, arc, check_rc=0)
    assert bfa.load(arc) == value
    several = tmp_path / "several.mpk"
    several.write_bytes(msgpack.packb(1) + msgpack.packb("two"))
    cli("convert", several, arc, check_rc=0)
    assert bfa.load(arc) == [1, "two"]
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"\xc1")                   # a reserved, never-used type byte
    assert "invalid MessagePack" in one_error_line(cli("convert", bad, arc), bad)


def test_msgpack_missing_is_one_line(tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "msgpack.py").write_text("raise ImportError('no msgpack here')\n")
    src = tmp_path / "in.msgpack"
    src.write_bytes(b"\x01")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(fake)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    err = one_error_line(cli("convert", src, tmp_path / "o.bfa", env=env), src)
    assert "pip install msgpack" in err


def test_npz_and_npy_to_archive(tmp_path):
    arrays = {"emb": np.random.default_rng(1).standard_normal((100, 8)).astype(np.float32),
              "ids": np.arange(100, dtype=np.int64),
              "when": np.array(["2024-01-01"], dtype="datetime64[D]")}
    npz, arc = tmp_path / "a.npz", tmp_path / "a.bfa"
    np.savez(npz, **arrays)
    cli("convert", npz, arc, check_rc=0)
    with bfa.Archive.open(arc) as a:
        assert sorted(a.root) == sorted(arrays)
        for name, arr in arrays.items():
            assert a[name].dtype == arr.dtype and np.array_equal(a[name], arr)
    out = cli("get", arc, "emb", "--raw", check_rc=0)
    assert out.stdout == arrays["emb"].tobytes()
    npy = tmp_path / "one.npy"
    np.save(npy, arrays["emb"])
    cli("convert", npy, tmp_path / "one.bfa", check_rc=0)
    assert np.array_equal(bfa.load(tmp_path / "one.bfa"), arrays["emb"])
    js = tmp_path / "a.json"
    cli("convert", arc, js, check_rc=0)                     # arrays become nested lists
    assert json.loads(js.read_text())["ids"] == list(range(100))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert "cannot read npz" in one_error_line(cli("convert", bad, arc), bad)


def test_compression_option(tmp_path):
    src, arc = tmp_path / "in.json", tmp_path / "out.bfa"
    src.write_text(json.dumps(DATA))
    supported = "compression" in inspect.signature(bfa.dump).parameters
    out = cli("convert", src, arc, "--compression", "lz4")
    if supported:
        assert out.returncode == 0, out.stderr
        assert bfa.load(arc) == DATA
        assert "compressed" in cli("inspect", arc, check_rc=0).stdout.decode().splitlines()[0]
        err = one_error_line(cli("convert", src, arc, "--compression", "nope"), arc)
    else:
        err = one_error_line(out, arc)
        assert "compression not available in this version" in err
        assert not arc.exists()
    err = one_error_line(cli("convert", arc, tmp_path / "o.json", "--compression", "lz4"),
                         tmp_path / "o.json")
    assert "archive output only" in err


def test_convert_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{bad")
    assert "invalid JSON" in one_error_line(cli("convert", bad, tmp_path / "o.bfa"), bad)
    assert not (tmp_path / "o.bfa").exists()
    good = tmp_path / "good.json"
    good.write_text("[1]")
    assert "extension '.txt'" in one_error_line(cli("convert", good, tmp_path / "o.txt"),
                                               tmp_path / "o.txt")
    assert "one side must be an archive" in one_error_line(
        cli("convert", good, tmp_path / "o.json"), tmp_path / "o.json")
    missing_dir = tmp_path / "no" / "such" / "o.bfa"
    assert "no such file" in one_error_line(cli("convert", good, missing_dir), missing_dir)
    cli("convert", good, tmp_path / "o.dat", "--to", "bfa", check_rc=0)   # formats by flag
    assert bfa.load(tmp_path / "o.dat") == [1]


def test_progress_only_on_a_terminal(tmp_path):
    src, arc = tmp_path / "in.jsonl", tmp_path / "out.bfa"
    src.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(5000)))
    proc, shown = convert_on_a_terminal(src, arc)
    assert proc.returncode == 0 and proc.stdout == b""
    assert "reading" in shown and f"wrote {arc}" in shown
    assert len(bfa.load(arc)) == 5000

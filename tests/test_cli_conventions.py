"""The command line never prints a traceback: deep nesting, lone surrogates,
NaN in JSON, options checked first, errors on stderr with documented exit
statuses; `get` into arrays and keys holding '/'; progress both ways."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bfast_archive as bfa
from bfast_archive import cli as cli_module
from bfast_archive.format import DEFAULT_MAX_DEPTH


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bfast_archive", *map(str, args)],
                          capture_output=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def ok(out):
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout.decode()


def one_error_line(out, path, status=1):
    err = out.stderr.decode()
    assert out.returncode == status, (out.returncode, err)
    assert err.startswith(f"bfast-archive: {path}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def nested_json(depth):
    return "[" * depth + "]" * depth


def nested(depth):
    """``json.loads(nested_json(depth))``, built without recursion."""
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def depth_of(value):
    """How deep ``nested`` nests ``value`` (checked without recursion)."""
    depth = 1
    while value:
        assert type(value) is list and len(value) == 1
        value, depth = value[0], depth + 1
    assert value == []
    return depth


# -- nesting: works up to max_depth, refused cleanly beyond ---------------------------------

def test_convert_json_nested_to_max_depth(tmp_path):
    src, dst = tmp_path / "deep.json", tmp_path / "deep.bfa"
    src.write_text(nested_json(DEFAULT_MAX_DEPTH))
    ok(cli("convert", src, dst))
    assert depth_of(bfa.load(dst)) == DEFAULT_MAX_DEPTH


def test_convert_json_nested_past_max_depth_is_one_error_line(tmp_path):
    src, dst = tmp_path / "deep.json", tmp_path / "deep.bfa"
    src.write_text(nested_json(DEFAULT_MAX_DEPTH + 1))
    err = one_error_line(cli("convert", src, dst), src)
    assert f"nesting deeper than max_depth={DEFAULT_MAX_DEPTH}" in err and len(err) < 400
    assert not dst.exists()


def test_convert_json_nested_far_past_max_depth_is_one_error_line(tmp_path):
    src, dst = tmp_path / "deep.json", tmp_path / "deep.bfa"
    src.write_text(nested_json(200_000))
    assert "nesting deeper" in one_error_line(cli("convert", src, dst), src)


def test_convert_archive_nested_to_max_depth_to_json(tmp_path):
    src, dst = tmp_path / "deep.bfa", tmp_path / "deep.json"
    bfa.dump(nested(DEFAULT_MAX_DEPTH), src)
    ok(cli("convert", src, dst))
    assert dst.read_text() == nested_json(DEFAULT_MAX_DEPTH) + "\n"


def test_convert_archive_nested_past_max_depth_to_json_is_one_error_line(tmp_path):
    src, dst = tmp_path / "deep.bfa", tmp_path / "deep.json"
    bfa.dump(nested(DEFAULT_MAX_DEPTH + 1), src,
             max_depth=DEFAULT_MAX_DEPTH + 1)
    assert "max_depth" in one_error_line(cli("convert", src, dst), src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.bfa"]


def test_get_of_a_value_nested_to_max_depth(tmp_path):
    src = tmp_path / "deep.bfa"
    bfa.dump({"k": nested(DEFAULT_MAX_DEPTH - 1)}, src)
    out = ok(cli("get", src, "k"))
    assert "".join(out.split()) == nested_json(DEFAULT_MAX_DEPTH - 1)


def test_inspect_of_an_archive_nested_to_max_depth(tmp_path):
    src = tmp_path / "deep.bfa"
    bfa.dump(nested(DEFAULT_MAX_DEPTH), src)
    lines = ok(cli("inspect", src)).splitlines()
    assert lines[1] == "root: list, 1 item, ~0 B" and len(lines) == 5


def test_inspect_of_a_bad_path_prints_nothing_on_stdout(tmp_path):
    src = tmp_path / "a.bfa"
    bfa.dump({"a": 1}, src)
    out = cli("inspect", src, "nope")
    assert out.stdout == b"" and "no key 'nope'" in one_error_line(out, src)


# -- lone surrogates: \udXXX escapes, as json.dumps writes them -----------------------------

SURROGATES = ["\ud800", {"k\udc00": "v\udfff"}]


@pytest.fixture
def surrogates(tmp_path):
    path = tmp_path / "s.bfa"
    bfa.dump(SURROGATES, path)
    return path


def test_convert_writes_lone_surrogates_as_escapes(surrogates, tmp_path):
    dst = tmp_path / "s.json"
    ok(cli("convert", surrogates, dst))
    assert dst.read_text() == json.dumps(SURROGATES) + "\n"
    assert json.loads(dst.read_text()) == SURROGATES


def test_convert_to_jsonl_writes_lone_surrogates_as_escapes(surrogates, tmp_path):
    dst = tmp_path / "s.jsonl"
    ok(cli("convert", surrogates, dst))
    assert [json.loads(line) for line in dst.read_text().splitlines()] == SURROGATES


def test_get_writes_lone_surrogates_as_escapes(surrogates):
    out = ok(cli("get", surrogates, "/"))
    assert "\\ud800" in out and "\\udc00" in out and json.loads(out) == SURROGATES


def test_inspect_shows_the_whole_tree_with_lone_surrogates(surrogates):
    out = ok(cli("inspect", surrogates))
    assert "[0]: str, 3 B = '\\ud800'" in out
    assert "└── k\\udc00: str, 4 B = 'v\\udfff'" in out   # the last line of the tree


def test_get_on_a_stream_that_is_not_utf8_escapes_past_ascii(tmp_path):
    path = tmp_path / "u.bfa"
    bfa.dump({"name": "zoë 😀"}, path)
    out = cli("get", path, "name", env={"PYTHONIOENCODING": "ascii"})
    assert out.returncode == 0 and out.stdout == b'"zo\\u00eb \\ud83d\\ude00"\n'


# -- NaN and Infinity are not JSON -------------------------------------------------------------

@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_convert_refuses_json_nan_and_infinity(tmp_path, constant):
    src, dst = tmp_path / "n.json", tmp_path / "n.bfa"
    src.write_text(f'{{"x": [1, {constant}]}}')
    err = one_error_line(cli("convert", src, dst), src)
    assert f"{constant} is not JSON" in err and "--allow-nan" in err
    assert not dst.exists()


def test_convert_refuses_nan_in_json_lines_naming_the_line(tmp_path):
    src, dst = tmp_path / "n.jsonl", tmp_path / "n.bfa"
    src.write_text('{"x": 1}\n{"x": NaN}\n')
    assert "line 2: invalid JSON: NaN is not JSON" in one_error_line(cli("convert", src, dst),
                                                                     src)


def test_convert_allow_nan_reads_them_as_floats(tmp_path):
    src, dst = tmp_path / "n.json", tmp_path / "n.bfa"
    src.write_text('[NaN, Infinity, -Infinity]')
    ok(cli("convert", src, dst, "--allow-nan"))
    x = bfa.load(dst)
    assert x[0] != x[0] and x[1:] == [float("inf"), float("-inf")]


# -- options, streams and exit statuses ----------------------------------------------------------

def test_version():
    out = ok(cli("--version"))
    assert out.startswith(f"bfast-archive {bfa.__version__} (archive format 1.")
    assert out.endswith(")\n") and out.count("\n") == 1


def test_convert_checks_compression_before_reading_the_input(tmp_path):
    missing, dst = tmp_path / "missing.json", tmp_path / "o.bfa"
    err = one_error_line(cli("convert", missing, dst, "--compression", "zstd"), dst)
    assert "--compression: compression must be None or 'lz4', not 'zstd'" in err


def test_verify_failure_goes_to_stderr_and_ok_to_stdout(tmp_path):
    good, bad = tmp_path / "good.bfa", tmp_path / "bad.bfa"
    bfa.dump([1], good)
    bad.write_bytes(b"not an archive" * 10)
    out = cli("verify", good, bad)
    assert out.returncode == 1
    assert out.stdout.decode().startswith(f"OK: {good}: ") and out.stdout.count(b"\n") == 1
    assert out.stderr.decode().startswith(f"FAILED: {bad}: ") and out.stderr.count(b"\n") == 1


def test_internal_error_is_one_line_with_status_3(monkeypatch, capsys, tmp_path):
    path = tmp_path / "x.bfa"
    bfa.dump({"a": 1}, path)

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli_module, "cmd_get", broken)
    assert cli_module.main(["get", str(path), "a"]) == cli_module.EXIT_INTERNAL == 3
    err = capsys.readouterr().err
    assert err == f"bfast-archive: {path}: internal error, please report it: RuntimeError: boom\n"


def test_os_error_past_the_checks_is_one_line_naming_its_file(monkeypatch, capsys, tmp_path):
    def failing(args):
        raise PermissionError(13, "Permission denied", "/some/file")

    monkeypatch.setattr(cli_module, "cmd_get", failing)
    assert cli_module.main(["get", str(tmp_path / "x.bfa"), "a"]) == 1
    assert capsys.readouterr().err == "bfast-archive: /some/file: permission denied\n"


def test_library_error_past_the_checks_is_one_line(monkeypatch, capsys, tmp_path):
    def failing(args):
        raise bfa.NestingError("reference cycle: a list contains itself at [0]")

    monkeypatch.setattr(cli_module, "cmd_inspect", failing)
    assert cli_module.main(["inspect", str(tmp_path / "x.bfa")]) == 1
    assert "reference cycle" in capsys.readouterr().err


# -- get: array rows, keys holding '/' ---------------------------------------------------------

@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    path = tmp_path_factory.mktemp("get") / "a.bfa"
    bfa.dump({"emb": np.arange(40, dtype=np.int32).reshape(10, 4), "a/b": {"7": "str", 7: "int"},
              "users": [{"v": [1, 2]}]}, path)
    return path


def test_get_indexes_into_an_array(arrays):
    assert json.loads(ok(cli("get", arrays, "emb/5")))["data"] == [20, 21, 22, 23]


def test_get_indexes_into_an_array_from_the_end(arrays):
    assert json.loads(ok(cli("get", arrays, "emb/-1")))["data"] == [36, 37, 38, 39]


def test_get_reaches_an_array_element(arrays):
    assert ok(cli("get", arrays, "emb/5/2")) == "22\n"


def test_get_array_index_out_of_range_is_one_error_line(arrays):
    err = one_error_line(cli("get", arrays, "emb/10"), arrays)
    assert "index 10 out of range for the array at emb (10 items)" in err


def test_get_indexes_into_a_compressed_array(tmp_path):
    path = tmp_path / "c.bfa"
    bfa.dump({"emb": np.arange(400_000, dtype=np.float32).reshape(100_000, 4)}, path,
             compression="lz4")
    assert json.loads(ok(cli("get", path, "emb/99999")))["data"] == [399996.0, 399997.0,
                                                                      399998.0, 399999.0]


def test_get_path_json_reaches_a_key_holding_a_slash(arrays):
    assert ok(cli("get", arrays, '["a/b", "7"]', "--path-json")) == '"str"\n'


def test_get_path_json_tells_int_keys_from_str_keys(arrays):
    assert ok(cli("get", arrays, '["a/b", 7]', "--path-json")) == '"int"\n'


def test_get_path_json_indexes_lists(arrays):
    assert ok(cli("get", arrays, '["users", 0, "v", 1]', "--path-json")) == "2\n"


def test_get_path_json_that_is_not_an_array_of_steps_is_one_error_line(arrays):
    err = one_error_line(cli("get", arrays, '{"a": 1}', "--path-json"), arrays)
    assert "must be a JSON array" in err


def test_inspect_path_json(arrays):
    assert ok(cli("inspect", arrays, '["a/b"]', "--path-json")).splitlines()[1] == \
        "a/b: dict, 2 keys, 15 B"


# -- progress when writing JSON Lines --------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.updates = []

    def update(self, done, total, unit=""):
        self.updates.append((done, total, unit))


def test_convert_to_jsonl_reports_progress_by_items(tmp_path):
    src = tmp_path / "rows.bfa"
    bfa.dump([{"i": i} for i in range(1000)], src)
    progress = Recorder()
    with bfa.Archive.open(src) as arch:
        cli_module._write_json(arch.root, str(src), str(tmp_path / "rows.jsonl"), "jsonl",
                               progress)
    assert progress.updates[-1] == (1000, 1000, "items")
    assert [d for d, _, _ in progress.updates] == sorted(d for d, _, _ in progress.updates)
    assert len(progress.updates) > 1


def test_progress_line_by_items_shows_counts(monkeypatch, capsys):
    progress = cli_module._Progress()
    progress.enabled, progress.last, progress.label = True, 0.0, "writing x.jsonl"
    progress.update(500, 1000, "items")
    assert capsys.readouterr().err.endswith("writing x.jsonl  50% (500 / 1,000 items)")


# -- the JSON writer agrees with json.dumps ----------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.text(max_size=5) | st.integers(), kids, max_size=4),
    max_leaves=30)


@given(JSON_VALUES, st.sampled_from([None, 2]))
def test_json_writer_writes_what_json_dumps_writes(value, indent):
    expected = json.dumps(value, ensure_ascii=False, indent=indent)
    assert "".join(cli_module._json_chunks(value, "f", True, indent)) == expected


@given(JSON_VALUES)
def test_json_writer_ascii_mode_writes_what_json_dumps_writes(value):
    assert "".join(cli_module._json_chunks(value, "f", True, None, ensure_ascii=True)) == \
        json.dumps(value)

"""Cache and memoize as users expect them: sizes given as text, arguments
checked up front, a context manager; memoize's ignore=, methods, and
functions without source keyed on their code across processes."""
import os
import subprocess
import sys

import pytest

import bfast_archive as bfa
from bfast_archive.cache import parse_size


# -- sizes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, size", [
    ("10GB", 10 * 10 ** 9), ("1G", 1 << 30), ("512MiB", 512 << 20), ("1.5 tb", 15 * 10 ** 11),
    ("64k", 64 << 10), ("4096", 4096), ("4096B", 4096), (" 2 GiB ", 2 << 30), ("0", 0),
])
def test_parse_size_reads_units(text, size):
    assert parse_size(text) == size


def test_parse_size_passes_ints_and_none():
    assert parse_size(12345) == 12345 and parse_size(None) is None


@pytest.mark.parametrize("bad", ["lots", "1 parsec", "-1G", "G", "1e9", ""])
def test_parse_size_refuses_other_text_saying_what_is_accepted(bad):
    with pytest.raises(ValueError, match="'10GB', '512MiB', '1G'"):
        parse_size(bad)


@pytest.mark.parametrize("bad", [1.5, True, [1]])
def test_parse_size_refuses_other_types_saying_what_is_accepted(bad):
    with pytest.raises(TypeError, match="an int number of bytes"):
        parse_size(bad)


def test_parse_size_refuses_negative_ints():
    with pytest.raises(ValueError, match="max_bytes must be an int number of bytes >= 0"):
        parse_size(-1)


def test_cache_takes_a_size_as_text(tmp_path):
    assert bfa.Cache(tmp_path, max_bytes="1G").max_bytes == 1 << 30


def test_cache_size_as_text_bounds_the_entries(tmp_path):
    cache = bfa.Cache(tmp_path, max_bytes="3KiB")
    for i in range(10):
        cache[f"k{i}"] = b"x" * 700
    assert cache.stats()["bytes"] <= 3 << 10 and "k9" in cache


def test_cache_refuses_a_bad_size_before_touching_the_directory(tmp_path):
    with pytest.raises(ValueError, match="max_bytes must be"):
        bfa.Cache(tmp_path / "c", max_bytes="lots")
    assert not (tmp_path / "c").exists()


def test_cache_refuses_a_directory_that_is_not_a_path():
    with pytest.raises(TypeError, match="Cache needs a directory"):
        bfa.Cache(1 << 30)


def test_memoize_takes_a_size_as_text(tmp_path):
    @bfa.memoize(tmp_path, max_bytes="10MB")
    def f(x):
        return x

    assert f.cache.max_bytes == 10 ** 7


# -- context manager ----------------------------------------------------------------------------

def test_cache_is_a_context_manager_that_drops_its_mappings(tmp_path):
    with bfa.Cache(tmp_path) as cache:
        cache["k"] = {"a": [1, 2, 3]}
        view = cache["k"]
        assert cache._mapped
    assert not cache._mapped
    assert view["a"].to_python() == [1, 2, 3]        # views handed out stay valid
    assert cache["k"].to_python() == {"a": [1, 2, 3]}  # and the cache still works


# -- memoize: ignore= ---------------------------------------------------------------------------

def test_memoize_ignore_leaves_arguments_out_of_the_key(tmp_path):
    calls = []

    @bfa.memoize(tmp_path, ignore=["verbose"])
    def f(x, verbose=False):
        calls.append(x)
        return x * 2

    assert f(3, verbose=True) == 6 and f(3) == 6 and f(3, False) == 6
    assert calls == [3]
    assert f.key(3, verbose=True) == f.key(3, verbose=False)


def test_memoize_ignore_keeps_the_other_arguments_in_the_key(tmp_path):
    calls = []

    @bfa.memoize(tmp_path, ignore=["verbose"])
    def f(x, verbose=False):
        calls.append(x)
        return x

    f(1, verbose=True)
    f(2, verbose=True)
    assert calls == [1, 2]


def test_cache_memoize_takes_ignore(tmp_path):
    cache = bfa.Cache(tmp_path)
    calls = []

    @cache.memoize(ignore=["log"])
    def f(x, *, log=None):
        calls.append(x)
        return x

    f(1, log=print)        # not archivable, but not part of the key either
    f(1, log=None)
    assert calls == [1]


def test_memoize_ignore_of_an_unknown_name_is_refused_at_decoration(tmp_path):
    with pytest.raises(ValueError, match=r"ignore names 'verbos', not parameters of .*\(x, "
                                         r"verbose\)"):
        @bfa.memoize(tmp_path, ignore=["verbos"])
        def f(x, verbose=False):
            return x


def test_memoize_ignore_as_a_bare_string_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"ignore must be a list of parameter names, "
                                        r"e\.g\. \['verbose'\]"):
        bfa.memoize(tmp_path, ignore="verbose")(lambda x, verbose=False: x)


# -- memoize: methods -----------------------------------------------------------------------------

def test_memoized_method_with_self_ignored_shares_entries_across_instances(tmp_path):
    calls = []

    class Model:
        @bfa.memoize(tmp_path, ignore=["self"])
        def predict(self, x):
            calls.append(x)
            return x + 1

    assert Model().predict(1) == 2 and Model().predict(1) == 2
    assert calls == [1]


def test_memoized_method_of_a_pydantic_model_is_keyed_on_its_fields(tmp_path):
    import pydantic
    calls = []

    memoize = bfa.memoize(tmp_path)

    class Config(pydantic.BaseModel):
        # (pydantic takes unknown class attributes for fields unless told otherwise)
        model_config = pydantic.ConfigDict(ignored_types=(type(memoize(len)),))
        scale: int

        @memoize
        def apply(self, x):
            calls.append((self.scale, x))
            return self.scale * x

    assert Config(scale=2).apply(5) == 10 and Config(scale=2).apply(5) == 10
    assert Config(scale=3).apply(5) == 15
    assert calls == [(2, 5), (3, 5)]


# -- memoize: functions without source --------------------------------------------------------

def _run_c(code, cache_dir, log, seed):
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    out = subprocess.run([sys.executable, "-c", code, str(cache_dir), str(log)],
                         capture_output=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


def _script(body, preamble=""):
    return ("import sys\nimport bfast_archive as bfa\n" + preamble +
            "@bfa.memoize(sys.argv[1])\ndef f(x):\n" + body + "print(f(21))\n")


BODY = """\
    with open(sys.argv[2], "a") as log:
        log.write("computed\\n")
    return x * 2 if "a" in {"a", "b", "c"} else 0
"""


def test_function_from_python_c_hits_the_same_entry_from_another_script(tmp_path):
    log = tmp_path / "log"
    first = _script(BODY)
    second = _script(BODY, preamble="value = 'other lines before the function'\n" * 3)
    assert first != second
    assert _run_c(first, tmp_path / "c", log, seed=1) == "42\n"
    assert _run_c(second, tmp_path / "c", log, seed=2) == "42\n"
    assert log.read_text() == "computed\n"


def test_function_from_python_c_with_other_code_misses(tmp_path):
    log = tmp_path / "log"
    assert _run_c(_script(BODY), tmp_path / "c", log, seed=1) == "42\n"
    assert _run_c(_script(BODY.replace("x * 2", "x * 2 + 0")), tmp_path / "c", log,
                  seed=1) == "42\n"
    assert log.read_text() == "computed\ncomputed\n"

"""bfa.memoize and Cache.memoize: keys from the function's name, source and
arguments; results returned lazily from the archive."""
import importlib.util
import textwrap
import tracemalloc

import numpy as np
import pytest

import bfast_archive as bfa


def test_second_call_is_a_hit(tmp_path):
    calls = []

    @bfa.memoize(tmp_path)
    def features(day, model="base"):
        calls.append((day, model))
        return {"day": day, "model": model, "emb": np.full((4, 3), day, np.float32)}

    first = features(3)
    second = features(3)
    assert len(calls) == 1
    assert isinstance(first, bfa.ArchivedDict) and isinstance(second, bfa.ArchivedDict)
    assert second["model"] == "base" and np.array_equal(second["emb"], np.full((4, 3), 3))
    assert not second["emb"].flags.writeable
    features(day=3)                      # same call, spelled differently
    features(3, "base")
    features(3, model="base")
    assert len(calls) == 1
    features(3, "large")
    features(4)
    assert len(calls) == 3
    stats = features.cache.stats()
    assert stats["hits"] == 4 and stats["misses"] == 3 and stats["entries"] == 3
    assert features.__name__ == "features" and features.__wrapped__ is not None


def test_cache_memoize_forms_and_plain_results(tmp_path):
    cache = bfa.Cache(tmp_path)
    calls = []

    @cache.memoize
    def none_result(x):
        calls.append(x)
        return None

    @cache.memoize()
    def scalar(x, *args, **kwargs):
        calls.append(x)
        return x * 2

    assert none_result(1) is None and none_result(1) is None
    assert scalar(2, 3, b=1, a=2) == 4 and scalar(2, 3, a=2, b=1) == 4   # kwargs order
    assert calls == [1, 2]
    assert scalar.key(2, 3, a=2, b=1) == scalar.key(2, 3, b=1, a=2)
    assert scalar.key(2, 3) != scalar.key(2, 4)
    assert bfa.memoize(cache)(lambda: 1).cache is cache


def test_memoize_needs_a_directory():
    with pytest.raises(TypeError, match="directory"):
        @bfa.memoize
        def f():
            pass


def _exec_function(source):
    namespace = {}
    exec(textwrap.dedent(source), namespace)
    return namespace["compute"]


def test_edited_function_misses_without_source(tmp_path):
    """Functions defined by exec have no source file: their code object counts."""
    cache = bfa.Cache(tmp_path)
    v1 = cache.memoize(_exec_function("def compute(x):\n    return x + 1\n"))
    v1_again = cache.memoize(_exec_function("def compute(x):\n    return x + 1\n"))
    v2 = cache.memoize(_exec_function("def compute(x):\n    return x + 2\n"))
    assert v1(10) == 11
    assert v1_again.key(10) == v1.key(10)
    assert v2.key(10) != v1.key(10)
    assert v2(10) == 12                     # not v1's cached 11


def _load_module(path, name="memo_target"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_edited_function_misses_with_source(tmp_path):
    cache_dir = tmp_path / "cache"
    body = textwrap.dedent("""
        import bfast_archive as bfa
        @bfa.memoize({cache!r})
        def compute(x):
            return {{"v": x * {factor}}}
    """)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    (tmp_path / "a" / "m.py").write_text(body.format(cache=str(cache_dir), factor=10))
    (tmp_path / "b" / "m.py").write_text(body.format(cache=str(cache_dir), factor=10))
    (tmp_path / "c" / "m.py").write_text(body.format(cache=str(cache_dir), factor=20))
    a = _load_module(tmp_path / "a" / "m.py")
    b = _load_module(tmp_path / "b" / "m.py")   # same source elsewhere: same key
    c = _load_module(tmp_path / "c" / "m.py")   # edited
    assert a.compute(2)["v"] == 20
    assert b.compute.key(2) == a.compute.key(2)
    assert c.compute.key(2) != a.compute.key(2)
    assert c.compute(2)["v"] == 40


def test_numpy_arguments(tmp_path):
    cache = bfa.Cache(tmp_path)
    calls = []

    @cache.memoize
    def total(arr, scale=1.0):
        calls.append(1)
        return float(arr.sum() * scale)

    a = np.arange(1000, dtype=np.float64)
    assert total(a) == total(a.copy()) == a.sum()
    assert len(calls) == 1                                      # same content, same key
    k = total.key
    assert k(a) != k(a + 1)                                     # different content
    assert k(a) != k(a.astype(np.float32))                      # same values, other dtype
    assert k(a) != k(a.reshape(10, 100))                        # other shape
    assert k(a.view(np.int64)) != k(a)                          # same bytes, other dtype
    assert k(a.astype(">f8")) != k(a)                           # byte order counts
    assert k(np.asfortranarray(a.reshape(10, 100))) == k(a.reshape(10, 100))
    assert k(a[::2]) == k(np.ascontiguousarray(a[::2]))         # non-contiguous input
    assert k({"x": [a]}) != k({"x": [a + 1]})                   # nested arrays too
    assert k(np.zeros(0)) != k(np.zeros(1))
    assert k(np.array(3.0)) != k(np.array([3.0]))


def test_big_array_argument_is_hashed_without_a_copy(tmp_path):
    cache = bfa.Cache(tmp_path)

    @cache.memoize
    def f(arr, blob):
        return 1

    arr = np.ones((8 << 20) // 8)            # 8 MB
    blob = b"x" * (4 << 20)                  # 4 MB of bytes
    f.key(arr, blob)                          # warm (imports, source)
    tracemalloc.start()
    try:
        f.key(arr, blob)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"hashing allocated {peak} bytes"


def test_unarchivable_arguments_are_refused(tmp_path):
    cache = bfa.Cache(tmp_path)

    @cache.memoize
    def f(x):
        return 1

    with pytest.raises(bfa.UnsupportedTypeError, match="cache key"):
        f(object())
    with pytest.raises(TypeError):          # a bad call raises as the function would
        f(1, 2)


def test_memoized_method_needs_archivable_self(tmp_path):
    cache = bfa.Cache(tmp_path)

    class Model:
        @cache.memoize
        def predict(self, x):
            return x

    with pytest.raises(TypeError, match=r"instance \(Model\) cannot be part of the cache "
                                        r"key.*ignore=\['self'\]"):
        Model().predict(1)

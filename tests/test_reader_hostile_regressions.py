"""Crafted archives found by reading the spec against the code: each must
raise ArchiveError (never RecursionError, SyntaxError or a wrong answer)."""
import struct

import numpy as np
import pytest

import bfast_archive as bfa
from bfast_archive import format as F
from bfast_archive._bfa_core import lib


def rehash_header(raw: bytearray) -> bytes:
    """Recompute the section checksums and the header checksum after a test
    edits bytes, so that the edit reaches the structural checks (which apply
    whatever the checksums say) instead of a checksum mismatch."""
    sections = struct.unpack_from("<Q", raw, 48)[0]
    if struct.unpack_from("<I", raw, 12)[0] == F.F_CHECKSUMS and sections:
        for i in range(struct.unpack_from("<Q", raw, sections)[0]):
            at = sections + 32 + 24 * i
            off, n = struct.unpack_from("<QQ", raw, at)
            struct.pack_into("<Q", raw, at + 16, lib.bfa_xxh64(bytes(raw[off:off + n]), n, 0))
    raw[56:64] = struct.pack("<Q", lib.bfa_xxh64(bytes(raw[:56]), 56, 0))
    return bytes(raw)


def _retag(raw: bytearray, old_word: int, new_word: int) -> int:
    n = 0
    for at in range(24, len(raw) - 8, 8):
        if struct.unpack_from("<Q", raw, at)[0] == old_word:
            struct.pack_into("<Q", raw, at, new_word)
            n += 1
    return n


def test_fixed_shape_nodes_nested_through_fields_hit_the_depth_cap():
    value = 0
    for _ in range(3000):
        value = [value, 0, 0]
    raw = bytearray(bfa.dumps(value, max_depth=5000))
    assert _retag(raw, F.T_LIST | 3 << 8, F.T_TIMEDELTA | 3 << 8) >= 3000
    data = rehash_header(raw)
    for read in (lambda: bfa.loads(data), lambda: bfa.Archive.from_buffer(data).root):
        with pytest.raises(bfa.ArchiveError, match="max_depth"):
            read()


def test_dtype_descriptor_that_numpy_parses_with_ast_is_an_archive_error():
    raw = bytearray(bfa.dumps({"a": np.zeros(3, "<i4")}))
    at = raw.index(b"<i4")
    raw[at:at + 3] = b"(,)"
    with pytest.raises(bfa.ArchiveError, match="dtype descriptor"):
        bfa.loads(rehash_header(raw))


def test_dict_with_a_duplicate_key_is_refused_on_iteration():
    raw = bytearray(bfa.dumps({"k1": 1, "k2": 2}))
    at = raw.index(b"k2")
    raw[at:at + 2] = b"k1"
    arch = bfa.Archive.from_buffer(bytes(raw))
    with pytest.raises(bfa.ArchiveError, match="inconsistent"):
        list(arch.root)
    with pytest.raises(bfa.ArchiveError):
        bfa.loads(bytes(raw))


def test_short_key_with_garbage_padding_is_refused():
    raw = bytearray(bfa.dumps({"ab": 1}))
    at = raw.index(b"ab")
    raw[at + 5] = 0x7F  # a byte past the key's length, inside its slot
    with pytest.raises(bfa.ArchiveError):
        bfa.loads(bytes(raw))


def test_bad_set_member_error_names_its_path():
    with pytest.raises(bfa.UnsupportedTypeError, match=r"^.*at s\[<member"):
        bfa.dumps({"s": {1, (2, object())}})


def _share_first_child(value_bytes: bytes) -> bytes:
    """Point the second item of the root list at the first item's node."""
    raw = bytearray(value_bytes)
    w0, root = struct.unpack_from("<Qq", raw, 24)
    first = struct.unpack_from("<Qq", raw, root + 8)
    struct.pack_into("<Qq", raw, root + 8 + 16, *first)
    return rehash_header(raw)


def test_shared_nodes_are_refused_when_copied_out():
    """Billion laughs: each level's two items are one node; 40 levels would
    expand to 2**40 lists. The walk refuses the second reference."""
    value = [1, 2]
    for _ in range(40):
        value = [value, [0, 0]]
    raw = bytearray(bfa.dumps(value))
    # make every level's second item reference its first item's node
    for at in range(64, len(raw) - 48, 8):
        w0, p = struct.unpack_from("<Qq", raw, at)
        w1, q = struct.unpack_from("<Qq", raw, at + 16)
        if w0 == F.T_LIST | 2 << 8 and w1 == F.T_LIST | 2 << 8 and \
                struct.unpack_from("<Q", raw, at - 8)[0] == 2:
            struct.pack_into("<Qq", raw, at + 16, w0, p)
    data = rehash_header(raw)
    with pytest.raises(bfa.ArchiveError, match="referenced twice"):
        bfa.loads(data)
    arch = bfa.Archive.from_buffer(data)
    assert arch.root[0][0][0] is not None      # lazy access still works: no expansion
    with pytest.raises(bfa.ArchiveError, match="referenced twice"):
        arch.root.to_python()


def test_shared_long_string_is_refused():
    text = "x" * 1000
    raw = _share_first_child(bfa.dumps([text, "y" * 1000]))
    with pytest.raises(bfa.ArchiveError, match="referenced twice"):
        bfa.loads(raw)
    assert bfa.Archive.from_buffer(raw).root[1] == text   # a lazy read is one copy


def test_dict_count_near_2_to_the_64_does_not_hang():
    """Sizing the index of a dict claiming 2**62+1 keys looped forever (the
    doubling overflowed) before its count was checked against the node."""
    raw = bytearray(bfa.dumps({"a": 1}))
    w0, root = struct.unpack_from("<Qq", raw, 24)
    struct.pack_into("<Q", raw, root, (1 << 62) + 1)
    with pytest.raises(bfa.ArchiveError):
        bfa.Archive.from_buffer(rehash_header(raw))["a"]


def test_model_body_must_be_a_dict_or_table():
    from pydantic import BaseModel

    class M(BaseModel):
        x: int

    raw = bytearray(bfa.dumps(M(x=5)))
    w0, node = struct.unpack_from("<Qq", raw, 24)
    body = node + 8 + 16
    struct.pack_into("<Qq", raw, body, F.T_INT, 5)
    with pytest.raises(bfa.ArchiveError, match="body"):
        bfa.loads(rehash_header(raw))


def test_table_key_dict_holding_deep_values_is_an_archive_error():
    """A table's key dict is copied out to list the column names (columns,
    iterating a row): a key dict whose value is a list nested ~1000 deep
    raised RecursionError there (no recursion headroom outside to_python)."""
    deep: list = []
    cur = deep
    for _ in range(990):
        cur.append([])
        cur = cur[0]
    raw = bytearray(bfa.dumps([deep, [{"a": i, "b": i} for i in range(10)]]))
    root = struct.unpack_from("<Q", raw, 32)[0]
    deep_slot = struct.unpack_from("<QQ", raw, root + 8)
    w0, table = struct.unpack_from("<QQ", raw, root + 24)
    assert w0 & 0xFF == F.T_TABLE
    keys = struct.unpack_from("<QQ", raw, table + 16)[1]
    struct.pack_into("<QQ", raw, keys + 24 + 16, *deep_slot)   # column number -> the deep list
    arch = bfa.Archive.from_buffer(bytes(raw))
    for read in (lambda: arch.root[1].columns, lambda: list(arch.root[1][0]),
                 lambda: arch.root[1].to_python(), lambda: arch.root[1].column("a")):
        with pytest.raises(bfa.ArchiveError):
            read()


@pytest.mark.parametrize("value", [2 ** 63, -(2 ** 63) - 1, 2 ** 70, -(2 ** 71), -(2 ** 71) - 1,
                                   2 ** 71, -(2 ** 79) + 1, -(2 ** 135)])
def test_bigint_keys_only_in_canonical_form(value):
    """A BIGINT key is found by d[k] only in the writer's form (value outside
    int64, floor(bitlen/8) + 1 bytes): every other form of a value is refused
    when the dict is checked, so iteration and lookup cannot disagree."""
    canonical = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
    placeholder = 2 ** 200  # a 26-byte key: room for each form below
    for n in range(9, 20):
        for v in (value, 5, -1, -(2 ** 63)):
            try:
                form = v.to_bytes(n, "little", signed=True)
            except OverflowError:
                continue
            raw = bytearray(bfa.dumps({placeholder: "big"}))
            at = raw.index(placeholder.to_bytes(26, "little", signed=True))
            raw[at:at + 26] = form + bytes(26 - n)
            node = struct.unpack_from("<Q", raw, 32)[0]
            struct.pack_into("<Q", raw, node + 24, F.T_BIGINT | n << 8)   # the key slot
            # rebuild the one-key index: H(kind 5, form) & 1 -> entry 1
            cell = lib.bfa_hash_key(5, form, n) & 1
            struct.pack_into("<II", raw, node + 24 + 32, *((1, 0) if cell == 0 else (0, 1)))
            d = bfa.Archive.from_buffer(rehash_header(raw)).root
            if form == canonical:
                assert list(d) == [value] and d[value] == "big"
                assert d.to_python() == {value: "big"}
            else:
                with pytest.raises(bfa.ArchiveError):
                    list(d)
                with pytest.raises(bfa.ArchiveError):
                    d.to_python()

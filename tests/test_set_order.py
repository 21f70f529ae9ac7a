"""Set members are written in the order of their own archives' bytes
(docs/format/canonical-form.md, "Set order"); sets of ints take a shortcut
that must give that same order."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bfast_archive as bfa
from bfast_archive import writer

i64 = st.integers(-(1 << 63), (1 << 63) - 1)


@settings(max_examples=300, deadline=None)
@given(st.sets(st.one_of(i64, st.sampled_from([0, -1, 1, 255, 256, -(1 << 63), (1 << 63) - 1]))))
def test_int_sets_are_ordered_by_their_members_archives(members):
    assert sorted(members, key=writer._int_payload) == sorted(members, key=bfa.dumps)
    as_list = bfa.loads(bfa.dumps({"s": members, "f": frozenset(members)}))
    assert as_list == {"s": members, "f": frozenset(members)}


@settings(max_examples=50, deadline=None)
@given(st.sets(i64, min_size=1, max_size=30), st.integers(1 << 63, 1 << 80))
def test_a_member_beyond_i64_takes_the_general_order(members, big):
    with_big = members | {big}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(writer, "_int_payload", None)  # not called: a BIGINT's archive differs
        data = bfa.dumps(with_big)
    assert bfa.loads(data) == with_big


def test_an_int_set_writes_the_general_paths_bytes(monkeypatch):
    members = set(range(-500, 500, 7)) | {1 << 62, -(1 << 62)}
    fast = bfa.dumps(members)
    monkeypatch.setattr(writer, "_int_payload", bfa.dumps)  # the general key
    assert bfa.dumps(members) == fast

"""Datetimes read lazily (straight from the DATETIME node's slots) and copied
out come back exactly: value, fold, and the very zone (offset and name)."""
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

import bfast_archive as bfa

zones = st.one_of(
    st.none(),
    st.builds(lambda minutes, name: dt.timezone(dt.timedelta(minutes=minutes), name)
              if name else dt.timezone(dt.timedelta(minutes=minutes)),
              st.integers(-1439, 1439), st.one_of(st.none(), st.text(max_size=12))))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.datetimes(), zones, st.integers(0, 1)), min_size=1, max_size=6))
def test_datetimes_come_back_with_their_fold_and_zone(cases):
    values = [d.replace(tzinfo=z, fold=f) for d, z, f in cases]
    blob = bfa.dumps({"d": values})
    arch = bfa.Archive.from_buffer(blob)
    for got_list in ([arch["d"][i] for i in range(len(values))], bfa.loads(blob)["d"]):
        for got, want in zip(got_list, values):
            # timezones compare equal by offset alone: compare what repr shows
            assert repr(got) == repr(want) and got.fold == want.fold


def test_zones_equal_by_offset_but_named_differently_stay_apart():
    utc_named = dt.timezone(dt.timedelta(0), "named")
    values = [dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
              dt.datetime(2000, 1, 1, tzinfo=utc_named)]
    arch = bfa.Archive.from_buffer(bfa.dumps(values))
    assert arch[0].tzinfo is dt.timezone.utc
    assert arch[1].tzname() == "named"

"""Record tables shared by the table tests (tests/test_table_columns.py,
tests/test_native_table.py): named cases of every column kind, a model
whose list is a table, and a hypothesis strategy for tables."""
import datetime as dt
import enum

from hypothesis import strategies as st
from pydantic import BaseModel


class Color(enum.Enum):
    RED = "red"
    ONE = 1
    NOTHING = None


class Row(BaseModel):
    id: int
    name: str
    when: dt.datetime | None = None
    color: Color | None = None
    score: float | None = None
    flag: bool | None = None
    tags: list[str] = []


class Holder(BaseModel):
    rows: list[Row]


NAIVE = dt.datetime(2024, 2, 29, 23, 59, 59, 999999)
CASES = {
    "ints, a float late": [{"a": i if i != 40 else 0.5} for i in range(50)],
    "ints, None late": [{"a": None if i > 30 else i} for i in range(50)],
    "all None first block": [{"a": None if i < 20 else i} for i in range(50)],
    "bigint late": [{"a": i if i < 45 else 1 << 70} for i in range(50)],
    "bool then int": [{"a": True if i < 30 else 1} for i in range(50)],
    "bools with None": [{"a": None if i % 3 == 0 else i % 2 == 0} for i in range(50)],
    "floats with None": [{"a": None if i % 4 == 0 else i / 3} for i in range(50)],
    "floats, one None": [{"a": None if i == 33 else i / 3} for i in range(50)],
    "int then bool late": [{"a": i if i < 40 else True} for i in range(50)],
    "str, two None": [{"s": None if i in (0, 49) else str(i)} for i in range(50)],
    "str, non-ASCII late": [{"s": str(i) if i < 40 else "ü\ud800\0" + str(i)} for i in range(50)],
    "str with None": [{"s": None if i % 5 == 0 else "x" * i} for i in range(50)],
    "str lists": [{"t": [str(j) for j in range(i % 4)]} for i in range(50)],
    "str lists, None late": [{"t": ["a"] if i < 40 else None} for i in range(50)],
    "str lists, an int late": [{"t": ["a"] if i < 40 else ["b", 1]} for i in range(50)],
    "str lists, a tuple late": [{"t": ["a"] if i < 40 else ("b",)} for i in range(50)],
    "datetimes": [{"d": NAIVE - dt.timedelta(days=i * 997, microseconds=i)} for i in range(50)],
    "datetimes with None": [{"d": None if i % 3 else dt.datetime(1, 1, 1)} for i in range(50)],
    "datetime aware late": [{"d": NAIVE.replace(tzinfo=dt.timezone.utc if i == 44 else None)}
                            for i in range(50)],
    "datetime fold late": [{"d": NAIVE.replace(fold=int(i == 44))} for i in range(50)],
    "extreme datetimes": [{"d": dt.datetime.max if i % 2 else dt.datetime.min} for i in range(50)],
    "nested values": [{"x": {"y": i}, "l": [i, "a"], "t": (i,)} for i in range(50)],
    "mixed": [{"i": i, "f": i / 7, "b": i % 2 == 0, "s": f"s{i}", "t": ["q"] * (i % 3),
               "d": NAIVE, "n": None} for i in range(50)],
}


def model_rows(n: int, nothing: bool = False) -> list[Row]:
    """``n`` Row instances with every field kind, Nones and non-ASCII names."""
    # a member whose value is None reads back as None (the null), either layout
    colors = [Color.RED, Color.ONE, Color.NOTHING if nothing else Color.RED, None]
    return [Row(id=i, name=f"r{i}é" if i % 11 == 0 else f"r{i}",
                when=None if i % 6 == 0 else NAIVE - dt.timedelta(hours=i),
                color=colors[i % 4], score=None if i % 9 == 0 else i / 3,
                flag=None if i % 4 == 0 else i % 2 == 0, tags=["t"] * (i % 3)) for i in range(n)]


texts = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("\0\ud800é"), max_size=6)
cells = st.one_of(
    st.none(), st.integers(min_value=-(1 << 66), max_value=1 << 66), st.booleans(),
    st.floats(allow_nan=False), texts, st.lists(texts, max_size=3),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31),
                 timezones=st.none() | st.just(dt.timezone.utc), allow_imaginary=True),
)
# columns of one kind most of the time, so that the fast paths are taken
column_kinds = st.sampled_from([st.integers(-5, 5), st.floats(allow_nan=False), st.booleans(),
                                texts, st.lists(texts, max_size=3),
                                st.datetimes(min_value=dt.datetime(1, 1, 1)), cells])


@st.composite
def tables(draw) -> list[dict]:
    """A list of dicts with the same keys: a record table, mostly one kind per column."""
    ncols = draw(st.integers(1, 4))
    kinds = [draw(column_kinds) for _ in range(ncols)]
    nrows = draw(st.integers(4, 30))
    odd = draw(st.integers(0, nrows))  # a row whose cell may be anything
    return [{f"c{j}": draw(cells if i == odd else st.one_of(kind, st.none()))
             for j, kind in enumerate(kinds)} for i in range(nrows)]

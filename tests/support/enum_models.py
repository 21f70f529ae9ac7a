"""Enums of each kind and a model holding sets of them and enum-keyed dicts:
used by tests/test_models_real.py and imported again by its child processes
(the same bytes under any hash seed)."""
import enum
import pathlib

from pydantic import BaseModel


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 20
    MID = 3


class Tag(str, enum.Enum):
    A = "alpha"
    B = "beta"
    C = "gamma"


class Tagged(BaseModel):
    tags: set[Tag]
    levels: set[Level]
    counts: dict[Color, int]
    paths: frozenset[pathlib.Path] = frozenset()

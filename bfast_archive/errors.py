"""Exceptions raised by bfast_archive."""


class BfastError(Exception):
    """Base class of every error this library raises on purpose."""


class ArchiveError(BfastError, ValueError):
    """The archive bytes are wrong: bad magic, unknown version, truncated,
    an out-of-bounds or misaligned offset, invalid UTF-8, ... The message says
    what is wrong and at which byte offset. Also raised when a view of a closed
    archive is used."""


class SchemaMismatchError(ArchiveError):
    """The archive's data does not fit the model asked for: a field changed
    to an incompatible type, or a field the model requires has no value.
    The message names the field (its innermost path) and both types. Defined
    here, so that catching it does not import pydantic."""


class UnsupportedTypeError(BfastError, TypeError):
    """A value handed to the writer has a type the format cannot hold.

    ``path`` is where it sits in the input, e.g. ``users[3]['created']``."""

    def __init__(self, message: str, value: object = None, path: str = "") -> None:
        super().__init__(message)
        self.value = value
        self.path = path


class InternalError(BfastError, RuntimeError):
    """A failure of bfast_archive itself, not of the input or the file: the C
    core refused arguments the writer built (a bug; please report it). The
    message names the operation and the core's error."""

class NestingError(BfastError, ValueError):
    """A value handed to the writer contains itself (a reference cycle) or
    nests deeper than ``max_depth``.

    ``path`` is where the writer found it, e.g. ``a[0]['b']`` (the container
    that is its own ancestor, or the first one past ``max_depth``); the
    message names it too (long paths shortened in the middle)."""

    def __init__(self, message: str, value: object = None, path: str = "") -> None:
        super().__init__(message)
        self.value = value
        self.path = path

"""Which sources are URLs (read and written through fsspec, bfast_archive.remote)
and which are local paths. Imports nothing heavy: ``load`` and ``dump`` of a
local path go through here."""
from __future__ import annotations

import os
import re
from typing import Any

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+://")


def is_url(source: object) -> bool:
    """True for a URL string (``s3://``, ``gs://``, ``az://``, ``http(s)://``,
    ``memory://``, ``file://``, any ``scheme://``); False for plain paths,
    ``os.PathLike`` objects and bytes, which stay local. Cost: a regex match."""
    return isinstance(source, str) and _URL.match(source) is not None


def local_path(url: str) -> str | None:
    """The local path of a ``file://`` URL (read and written as a local file:
    mapped, replaced atomically by rename), None for any other URL."""
    if not url.lower().startswith("file://"):
        return None
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValueError(f"{url}: a file:// URL names a file on this machine (no host)")
    return unquote(parts.path)


def split_source(source: str | os.PathLike[str], storage_options: dict[str, Any] | None
                 ) -> tuple[str | None, str | os.PathLike[str]]:
    """What ``load``/``dump`` were given, as ``(url, path)``: ``url`` is the URL
    to go through fsspec, None for a local file, whose path is ``path`` (a
    ``file://`` URL's path). ``storage_options`` with a local path raise
    ValueError, as in pandas."""
    if is_url(source):
        assert isinstance(source, str)
        path = local_path(source)
        if path is None:
            return source, source
        source = path
    if storage_options:
        raise ValueError(f"storage_options are for URLs (s3://, http(s)://...), "
                         f"not the local path {os.fspath(source)!r}")
    return None, source

"""Constants of the archive format, in one place (normative text: docs/format/).

The numbers themselves live in csrc/bfa.h, the single source shared with the
C core; this module names them for Python and adds the fixed struct layouts.
"""
import struct

from ._native import lib

MAGIC = b"\x89BFA\r\n\x1a\n"
HEADER_SIZE = lib.BFA_HEADER_SIZE
VERSION_MAJOR = lib.BFA_VERSION_MAJOR
VERSION_MINOR = lib.BFA_VERSION_MINOR
ARRAY_ALIGN = 64
NODE_ALIGN = 8
ROOT_SLOT_POS = 24

T_NONE = lib.BFA_T_NONE
T_FALSE = lib.BFA_T_FALSE
T_TRUE = lib.BFA_T_TRUE
T_INT = lib.BFA_T_INT
T_FLOAT = lib.BFA_T_FLOAT
T_BIGINT = lib.BFA_T_BIGINT
T_STR = lib.BFA_T_STR
T_BYTES = lib.BFA_T_BYTES
T_SSTR = lib.BFA_T_SSTR
T_SBYTES = lib.BFA_T_SBYTES
T_LIST = lib.BFA_T_LIST
T_TUPLE = lib.BFA_T_TUPLE
T_DICT = lib.BFA_T_DICT
T_SET = lib.BFA_T_SET
T_FROZENSET = lib.BFA_T_FROZENSET
T_NDARRAY = lib.BFA_T_NDARRAY
T_DATE = lib.BFA_T_DATE
T_DATETIME = lib.BFA_T_DATETIME
T_TIME = lib.BFA_T_TIME
T_TIMEDELTA = lib.BFA_T_TIMEDELTA
T_UUID = lib.BFA_T_UUID
T_DECIMAL = lib.BFA_T_DECIMAL
T_COMPLEX = lib.BFA_T_COMPLEX
T_NPSCALAR = lib.BFA_T_NPSCALAR

T_TABLE = lib.BFA_T_TABLE
T_XBYTES = lib.BFA_T_XBYTES
T_MODEL = lib.BFA_T_MODEL
T_FRAME = lib.BFA_T_FRAME  # format 1.1: a data frame, [metadata, table, dictionaries]
VERSION_MINOR_FRAMES = 1    # the minor version of archives that hold 1.1 features (frames, dtype forms)
VERSION_MINOR_TAIL_COPY = 2  # ... of archives with a tail copy (docs/format/layout.md, "Tail copy")
VERSION_MINOR_LATEST = VERSION_MINOR_TAIL_COPY  # the latest minor version this package writes
# the most bytes of chunks a tail copy holds (the writer's bound; a reader by
# range widens the tail it fetches at open by this much to find the copy)
TAIL_COPY_MAX = 64 << 10
# decoded bytes below which a read decodes its chunks on the calling thread:
# handing chunks to the pool costs more than it saves there (measured on 2
# cores: 64 KiB in 4 KiB chunks 170 us inline, 250 us on 2 threads; 256 KiB
# in 64 KiB chunks 577 us inline, 467 us on 2 threads)
PARALLEL_DECODE_MIN = 256 << 10
# bytes below which checksums are computed (writer) and checked (``verify``) on
# the calling thread: XXH64 runs at several GB/s, so handing the work to
# threads costs more than it saves below a few MiB (verify of a 4 MiB archive
# from memory on 2 cores: 437 us on one thread, 488 us on two)
PARALLEL_MIN = 8 << 20

F_COMPRESSED = lib.BFA_F_COMPRESSED
F_CHECKSUMS = lib.BFA_F_CHECKSUMS
CODEC_RAW = lib.BFA_CODEC_RAW
CODEC_LZ4 = lib.BFA_CODEC_LZ4
MAX_CHUNK = lib.BFA_MAX_CHUNK
# Directory after the nodes: counts, then checksum, payload and chunk entries.
DIRECTORY_HEADER = struct.Struct("<QQQQ")
CHECK_ENTRY = struct.Struct("<QQQ")            # offset, length, xxh64
PAYLOAD_ENTRY = struct.Struct("<QQQQQ")        # size, chunk size, first chunk, chunks, 0
CHUNK_ENTRY = struct.Struct("<QQQII")          # offset, stored size, xxh64, codec, 0
CHECK_BLOCK = 1 << 22  # uncompressed archives: one checksum per 4 MiB at most

COL_INT64 = lib.BFA_COL_INT64
COL_FLOAT64 = lib.BFA_COL_FLOAT64
COL_BOOL = lib.BFA_COL_BOOL
COL_STR = lib.BFA_COL_STR
COL_SLOTS = lib.BFA_COL_SLOTS
COL_STRLIST = lib.BFA_COL_STRLIST
COL_DATETIME = lib.BFA_COL_DATETIME  # naive datetimes: int64 microseconds since 0001-01-01
COL_HAS_NULLS = lib.BFA_COL_HAS_NULLS
COL_FIXED = lib.BFA_COL_FIXED    # 1.1: fixed-width values, element type in flags bits 8..15
COL_BINARY = lib.BFA_COL_BINARY  # 1.1: byte strings, laid out as STR
COL_TYPE_SHIFT = lib.BFA_COL_TYPE_SHIFT
# FIXED element types: code -> NumPy dtype of the stored values
FIXED_DTYPES = {
    lib.BFA_FX_INT8: "<i1", lib.BFA_FX_INT16: "<i2", lib.BFA_FX_INT32: "<i4",
    lib.BFA_FX_UINT8: "<u1", lib.BFA_FX_UINT16: "<u2", lib.BFA_FX_UINT32: "<u4",
    lib.BFA_FX_UINT64: "<u8", lib.BFA_FX_FLOAT16: "<f2", lib.BFA_FX_FLOAT32: "<f4",
    lib.BFA_FX_DATE32: "<i4",  # days since 1970-01-01
    lib.BFA_FX_TIMESTAMP_S: "<M8[s]", lib.BFA_FX_TIMESTAMP_MS: "<M8[ms]",
    lib.BFA_FX_TIMESTAMP_US: "<M8[us]", lib.BFA_FX_TIMESTAMP_NS: "<M8[ns]",
    lib.BFA_FX_DURATION_S: "<m8[s]", lib.BFA_FX_DURATION_MS: "<m8[ms]",
    lib.BFA_FX_DURATION_US: "<m8[us]", lib.BFA_FX_DURATION_NS: "<m8[ns]",
}
FX_DATE32 = lib.BFA_FX_DATE32
# the writer's column classes while it reads rows (shared with csrc/pytable.c)
WK_GENERAL, WK_INT, WK_FLOAT, WK_BOOL = (lib.BFA_WK_GENERAL, lib.BFA_WK_INT, lib.BFA_WK_FLOAT,
                                         lib.BFA_WK_BOOL)
WK_DATETIME, WK_STR, WK_STRLIST, WK_ENUM = (lib.BFA_WK_DATETIME, lib.BFA_WK_STR,
                                            lib.BFA_WK_STRLIST, lib.BFA_WK_ENUM)

K_INT = lib.BFA_K_INT
K_BIGINT = lib.BFA_K_BIGINT
K_STR = lib.BFA_K_STR
K_BYTES = lib.BFA_K_BYTES

TAG_NAMES = {
    T_NONE: "none", T_FALSE: "false", T_TRUE: "true", T_INT: "int", T_FLOAT: "float",
    T_BIGINT: "bigint", T_STR: "str", T_BYTES: "bytes", T_SSTR: "short str",
    T_SBYTES: "short bytes", T_LIST: "list", T_TUPLE: "tuple", T_DICT: "dict",
    T_SET: "set", T_FROZENSET: "frozenset", T_NDARRAY: "ndarray", T_DATE: "date",
    T_DATETIME: "datetime", T_TIME: "time", T_TIMEDELTA: "timedelta", T_UUID: "uuid",
    T_DECIMAL: "decimal", T_COMPLEX: "complex", T_NPSCALAR: "numpy scalar", T_TABLE: "table",
    T_XBYTES: "bytes (compressed payload)", T_MODEL: "model", T_FRAME: "frame",
}

# Slot: first word = tag | aux << 8, then the payload (signed view for ints).
SLOT = struct.Struct("<Qq")
SLOT_FLOAT = struct.Struct("<Qd")
SLOT_SHORT = struct.Struct("<Q8s")
U64 = struct.Struct("<Q")
# Header fields after the magic (docs/format/layout.md, "Header").
HEADER = struct.Struct("<8sHHIQQqQQQ")
# Dict node header: count, nbuckets, index width, reserved.
DICT_HEADER = struct.Struct("<QQII")
# ndarray node header: data offset, data length, ndim, flags, dtype-descriptor length.
NDARRAY_HEADER = struct.Struct("<QQIIQ")
NDARRAY_FORTRAN = 1
NDARRAY_EXTERNAL = lib.BFA_NDARRAY_EXTERNAL
# Table node: nrows, ncols, then the key-dict slot; then one descriptor per column:
# kind, flags, and three (offset, length) regions.
TABLE_HEADER = struct.Struct("<QQ")
TABLE_HEADER_SIZE = lib.BFA_TABLE_HEADER
COLUMN = struct.Struct("<IIQQQQQQ")
TABLE_MIN_ROWS = 4     # lists of at least this many same-keyed dicts become tables
SMALL_MAX = 8          # str/bytes of at most this many bytes live inside the slot
BIG_PAYLOAD = 1 << 16  # bytes/array payloads at least this big are written without copying
DEFAULT_MAX_DEPTH = 1000

/* bfa.h: the C interface of the bfast_archive layout core.
 *
 * This file is read twice: by the C compiler, and by build_ffi.py as the cffi
 * cdef (everything between the BFA_CDEF_BEGIN/END markers). Keep the part
 * between the markers free of preprocessor logic other than plain #defines
 * of integer constants.
 *
 * Conventions: every function takes the whole buffer (base pointer + length)
 * and trusts no offset read from it. Functions that locate a value return the
 * absolute position of a validated 16-byte slot (>= 0) or a negative error
 * code (BFA_E_*). The byte layout is specified in docs/format/.
 */
#ifndef BFA_H
#define BFA_H

#include <stddef.h>
#include <stdint.h>

/* BFA_CDEF_BEGIN */
#define BFA_HEADER_SIZE 64
#define BFA_SLOT_SIZE 16
#define BFA_VERSION_MAJOR 1
#define BFA_VERSION_MINOR 0

/* Slot tags (low byte of a slot's first word). */
#define BFA_T_NONE 0
#define BFA_T_FALSE 1
#define BFA_T_TRUE 2
#define BFA_T_INT 3
#define BFA_T_FLOAT 4
#define BFA_T_BIGINT 5
#define BFA_T_STR 6
#define BFA_T_BYTES 7
#define BFA_T_SSTR 8
#define BFA_T_SBYTES 9
#define BFA_T_LIST 10
#define BFA_T_TUPLE 11
#define BFA_T_DICT 12
#define BFA_T_SET 13
#define BFA_T_FROZENSET 14
#define BFA_T_NDARRAY 15
#define BFA_T_DATE 16
#define BFA_T_DATETIME 17
#define BFA_T_TIME 18
#define BFA_T_TIMEDELTA 19
#define BFA_T_UUID 20
#define BFA_T_DECIMAL 21
#define BFA_T_COMPLEX 22
#define BFA_T_NPSCALAR 23
#define BFA_T_XBYTES 24
/* 25..31 reserved for further scalar types. 32..47 reserved for extensions:
 * record tables, models/schemas, compressed payloads (see docs/format/layout.md, "Tags"). */
#define BFA_T_TABLE 32
#define BFA_T_MODEL 33
#define BFA_T_FRAME 34 /* format 1.1: [metadata dict, table, list of dictionary tables] */

/* Record-table column kinds (docs/format/nodes.md, "Table node"). */
#define BFA_COL_INT64 1
#define BFA_COL_FLOAT64 2
#define BFA_COL_BOOL 3
#define BFA_COL_STR 4
#define BFA_COL_SLOTS 5
#define BFA_COL_STRLIST 6
#define BFA_COL_DATETIME 7
#define BFA_COL_HAS_NULLS 1
/* Format 1.1 (data frames): fixed-width values whose element type is the
 * code in flags bits 8..15 (BFA_FX_*), and byte strings laid out as STR. */
#define BFA_COL_FIXED 8
#define BFA_COL_BINARY 9
#define BFA_COL_TYPE_SHIFT 8
#define BFA_COL_TYPE_MASK 65280
#define BFA_FX_INT8 1
#define BFA_FX_INT16 2
#define BFA_FX_INT32 3
#define BFA_FX_UINT8 4
#define BFA_FX_UINT16 5
#define BFA_FX_UINT32 6
#define BFA_FX_UINT64 7
#define BFA_FX_FLOAT16 8
#define BFA_FX_FLOAT32 9
#define BFA_FX_DATE32 10
#define BFA_FX_TIMESTAMP_S 11
#define BFA_FX_TIMESTAMP_MS 12
#define BFA_FX_TIMESTAMP_US 13
#define BFA_FX_TIMESTAMP_NS 14
#define BFA_FX_DURATION_S 15
#define BFA_FX_DURATION_MS 16
#define BFA_FX_DURATION_US 17
#define BFA_FX_DURATION_NS 18
/* How the writer classifies a column while it reads the rows (not stored:
 * shared by bfast_archive/writer.py and csrc/pytable.c). */
#define BFA_WK_GENERAL 0
#define BFA_WK_INT 1
#define BFA_WK_FLOAT 2
#define BFA_WK_BOOL 3
#define BFA_WK_DATETIME 4
#define BFA_WK_STR 5
#define BFA_WK_STRLIST 6
#define BFA_WK_ENUM 7
/* How the writer's C cell encoder (csrc/pyencode.c) takes a cell of a type
 * other than None/bool/int/float/str (not stored: shared with bfast_archive/_cells.py). */
#define BFA_CELL_DATETIME 1
#define BFA_CELL_DATE 2
#define BFA_CELL_UUID 3
#define BFA_CELL_DECIMAL 4
#define BFA_CELL_ENUM 5
#define BFA_TABLE_HEADER 32
#define BFA_COLUMN_SIZE 56

/* Error codes. */
#define BFA_OK 0
#define BFA_E_NOTFOUND -1
#define BFA_E_BOUNDS -2
#define BFA_E_ALIGN -3
#define BFA_E_TAG -4
#define BFA_E_CORRUPT -5
#define BFA_E_INDEX -6
#define BFA_E_ORDER -7
#define BFA_E_MAGIC -8
#define BFA_E_VERSION -9
#define BFA_E_FLAGS -10
#define BFA_E_TRUNCATED -11
#define BFA_E_HEADER -12
#define BFA_E_ARG -13
#define BFA_E_CHECKSUM -14
#define BFA_E_LIMIT -15
#define BFA_E_IO -16

/* Header flags. */
#define BFA_F_COMPRESSED 1
#define BFA_F_CHECKSUMS 2
#define BFA_F_KNOWN 3

/* Directory (docs/format/layout.md, "Directory"). */
#define BFA_DIRECTORY_HEADER 32
#define BFA_CHECK_ENTRY 24
#define BFA_PAYLOAD_ENTRY 40
#define BFA_CHUNK_ENTRY 32
#define BFA_CODEC_RAW 0
#define BFA_CODEC_LZ4 1
#define BFA_MAX_CHUNK 67108864
#define BFA_NDARRAY_EXTERNAL 2

/* Key kinds for dict lookups: the slot tag family of the key. */
#define BFA_K_INT 3
#define BFA_K_BIGINT 5
#define BFA_K_STR 6
#define BFA_K_BYTES 7

typedef struct {
    uint32_t version_major;
    uint32_t version_minor;
    uint32_t flags;
    uint64_t file_size;
    uint64_t nodes_end;
    uint64_t sections_off;
} bfa_header;

typedef struct {
    uint64_t n_checks;
    uint64_t n_payloads;
    uint64_t n_chunks;
    uint64_t checks_off;
    uint64_t payloads_off;
    uint64_t chunks_off;
} bfa_directory;

typedef int (*bfa_lz4_decompress_fn)(const char *src, char *dst, int src_size, int dst_cap);
typedef int (*bfa_lz4_compress_fn)(const char *src, char *dst, int src_size, int dst_cap,
                                   int acceleration);

/* Reader (read.c). */
int bfa_parse_header(const uint8_t *buf, uint64_t len, bfa_header *out);
/* 1 in every normal build; 0 in a build with validation compiled out
 * (BFA_UNCHECKED), which the Python side refuses to read files with unless
 * the caller opts in (BFA_ALLOW_UNCHECKED=1). */
int bfa_build_checked(void);
int bfa_check_slot(const uint8_t *buf, uint64_t len, uint64_t slot_pos, uint64_t limit);
int64_t bfa_seq_get(const uint8_t *buf, uint64_t len, uint64_t node_off, int64_t index);
int bfa_seq_check(const uint8_t *buf, uint64_t len, uint64_t node_off, uint64_t count);
int64_t bfa_dict_find(const uint8_t *buf, uint64_t len, uint64_t node_off,
                      uint32_t kind, const char *key, uint64_t key_len, int64_t int_key);
int bfa_dict_check(const uint8_t *buf, uint64_t len, uint64_t node_off, uint64_t count);
int bfa_table_check(const uint8_t *buf, uint64_t len, uint64_t node_off, uint64_t nrows);
int bfa_slots_check(const uint8_t *buf, uint64_t len, uint64_t off, uint64_t count,
                    uint64_t limit);
int bfa_offsets_check(const uint8_t *buf, uint64_t len, uint64_t off, uint64_t count,
                      uint64_t limit);
uint64_t bfa_hash_key(uint32_t kind, const char *key, uint64_t key_len);

/* Checksums (checksum.c) and the directory of chunks (chunks.c). */
uint64_t bfa_xxh64(const uint8_t *p, uint64_t len, uint64_t seed);
int bfa_verify_entries(const uint8_t *buf, uint64_t len, uint64_t table_off,
                       uint64_t entry_size, uint64_t first, uint64_t count, uint64_t *bad);
int bfa_directory_check(const uint8_t *buf, uint64_t len, const bfa_header *h,
                        bfa_directory *out);
int bfa_payload_decode(const uint8_t *buf, uint64_t len, const bfa_directory *dir,
                       uint64_t payload, uint64_t from, uint64_t to, uint8_t *dst,
                       uint64_t dst_len, bfa_lz4_decompress_fn decompress, int verify,
                       uint64_t *bad);
uint64_t bfa_lz4_bound(uint64_t n);
/* Chunks [from, to) of a payload of src_len bytes given in parts (the
 * first at logical offset first_off), cut in chunk_size pieces, compressed
 * where that saves 1/8: the stored chunks packed one after another in dst
 * (room for (to - from) * bfa_lz4_bound(chunk_size) bytes; *used written),
 * but for a raw chunk that lies whole in one part, which stays there;
 * scratch holds a chunk that straddles parts. Per chunk: stored size,
 * XXH64 of the stored bytes, codec. */
int bfa_chunks_encode(const uint8_t *const *parts, const uint64_t *part_lens, uint64_t n_parts,
                      uint64_t first_off, uint64_t src_len, uint64_t chunk_size, uint64_t from,
                      uint64_t to, uint8_t *dst, uint64_t dst_len, uint8_t *scratch,
                      uint64_t scratch_len, bfa_lz4_compress_fn compress, int acceleration,
                      uint64_t *sizes, uint64_t *hashes, uint32_t *codecs, uint64_t *used);
/* n directory chunk entries (off, size, hash, codec, 0) into out, the
 * first chunk stored at `at`, the others right after it; *end after the last. */
int bfa_chunk_entries(uint8_t *out, uint64_t out_len, uint64_t at, const uint64_t *sizes,
                      const uint64_t *hashes, const uint32_t *codecs, uint64_t n,
                      uint64_t *end);

/* Output buffers (memory.c): copies with the GIL released, a huge-page hint. */
void bfa_advise_huge(uint8_t *p, uint64_t len);
int bfa_copy(uint8_t *dst, uint64_t dst_len, uint64_t at, const uint8_t *src, uint64_t n);

/* Files (files.c): reserve a new file's blocks before writing it; 0 or an
 * errno value (EOPNOTSUPP where the call does not exist). */
int bfa_preallocate(int fd, uint64_t len);
/* Does `path` (stat(2), links followed) name the file `expected` describes:
 * {device, inode, size, mtime in ns}, each as its 64-bit two's complement?
 * 1 yes, 0 no (or a value the caller must compare itself), -1 stat failed
 * (the caller asks again to learn why), -2 no stat(2) here (both NULL:
 * -1 where it exists). The GIL is released meanwhile, as for any call. */
int bfa_file_matches(const char *path, const uint64_t *expected);

/* Archives whose bytes arrive by range (sparse.c): an image of the archive
 * in anonymous memory, filled block by block as reads need it. Every read
 * function above, handed the image's base, runs its ranged variant
 * (read_sparse.c): before each load it makes the block resident, calling
 * `fill(userdata, first, end)` (blocks [first, end)) for what is missing.
 * A fill that fails makes the read return BFA_E_IO. */
typedef struct bfa_image bfa_image;
typedef int (*bfa_fill_fn)(void *userdata, uint64_t first, uint64_t end);
bfa_image *bfa_image_new(uint64_t len, unsigned shift, bfa_fill_fn fill, void *userdata);
uint8_t *bfa_image_base(const bfa_image *im);
void bfa_image_free(bfa_image *im);
void bfa_image_mark(bfa_image *im, uint64_t first, uint64_t end);
/* Bytes [0, n) are resident (copied in by the caller), whatever their blocks. */
void bfa_image_prefix(bfa_image *im, uint64_t n);
int bfa_image_resident(const bfa_image *im, uint64_t first, uint64_t end);

/* Writer (layout.c). */
int bfa_dict_build_index(uint8_t *seg, uint64_t seg_len, uint64_t seg_base, uint64_t node_off);
uint64_t bfa_dict_nbuckets(uint64_t count);
/* BFA_CDEF_END */

#endif

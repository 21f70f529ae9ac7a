"""`bfast-archive convert` with Parquet and CSV (through pyarrow): into an
archive as a data frame and back, tables out, and errors as one line."""
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

import bfast_archive as bfa
from tests.support.cli import cli, convert_on_a_terminal, one_error_line

TABLE = pa.table({"id": pa.array(range(1000), pa.int64()),
                  "name": pa.array([f"n{i}" if i % 7 else None for i in range(1000)]),
                  "score": pa.array([i / 3 for i in range(1000)]),
                  "when": pa.array(range(1000), pa.timestamp("us", "UTC"))})


def test_parquet_to_archive_and_back(tmp_path):
    src, arc, back = tmp_path / "in.parquet", tmp_path / "a.bfa", tmp_path / "back.parquet"
    pq.write_table(TABLE, src, row_group_size=100)
    cli("convert", src, arc, check_rc=0)
    assert bfa.load(arc).equals(pq.read_table(src))
    cli("convert", arc, back, check_rc=0)
    assert pq.read_table(back).equals(pq.read_table(src))


def test_csv_to_archive_and_back(tmp_path):
    src, arc, back = tmp_path / "in.csv", tmp_path / "a.bfa", tmp_path / "back.csv"
    pcsv.write_csv(TABLE, src)
    cli("convert", src, arc, check_rc=0)
    assert bfa.load(arc).equals(pcsv.read_csv(src))
    cli("convert", arc, back, check_rc=0)
    assert pcsv.read_csv(back).equals(pcsv.read_csv(src))


def test_record_table_archive_to_parquet(tmp_path):
    arc, out = tmp_path / "rows.bfa", tmp_path / "rows.parquet"
    rows = [{"id": i, "name": f"u{i}"} for i in range(20)]
    bfa.dump(rows, arc)
    cli("convert", arc, out, check_rc=0)
    assert pq.read_table(out).to_pylist() == rows


def test_parquet_output_needs_a_table_root(tmp_path):
    arc, out = tmp_path / "d.bfa", tmp_path / "d.parquet"
    bfa.dump({"a": 1}, arc)
    err = one_error_line(cli("convert", arc, out), out)
    assert "table" in err and not out.exists()


def test_invalid_parquet_input_is_one_error_line(tmp_path):
    src, arc = tmp_path / "bad.parquet", tmp_path / "a.bfa"
    src.write_bytes(b"not parquet at all")
    err = one_error_line(cli("convert", src, arc), src)
    assert "parquet" in err and not arc.exists()


def test_parquet_progress_on_a_terminal(tmp_path):
    src, arc = tmp_path / "in.parquet", tmp_path / "a.bfa"
    pq.write_table(TABLE, src, row_group_size=10)
    proc, shown = convert_on_a_terminal(src, arc)
    assert proc.returncode == 0 and f"reading {src}" in shown and f"wrote {arc}" in shown

"""Every file format, auto-detection, and the errors bad files give."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from recsift.data import load
from recsift.data.loaders import detect_format, read_file
from recsift.errors import DataFormatError, UnknownNameError


def test_seqlines(fixtures):
    p = fixtures / "seqlines" / "seq.txt"
    assert detect_format(p) == "seqlines"
    inter = read_file(p)
    assert inter.counts() == {"n_users": 3, "n_items": 5, "n_interactions": 10}
    assert inter.item_ids[inter.item[inter.user == 2]].tolist() == [7, 3, 4, 5, 6]


def test_pairs(fixtures):
    p = fixtures / "pairs" / "pairs.txt"
    assert detect_format(p) == "pairs"
    inter = read_file(p)
    assert inter.counts() == {"n_users": 2, "n_items": 3, "n_interactions": 5}


def test_atomic_sorts_by_timestamp(fixtures):
    p = fixtures / "atomic" / "tiny.inter"
    assert detect_format(p) == "atomic"
    inter = read_file(p)
    assert inter.has_time
    assert inter.item_ids[inter.item[inter.user == 0]].tolist() == ["i2", "i3", "i1"]
    assert inter.rating.tolist() == [5, 3, 4, 1]


def test_csv_with_named_columns_and_dates(fixtures):
    p = fixtures / "csv_dates" / "clicks.csv"
    inter = read_file(p, user_col="visitor", item_col="product", time_col="when", rating_col="stars")
    assert inter.item_ids[inter.item[inter.user == 0]].tolist() == ["y", "x"]
    assert inter.item_ids[inter.item[inter.user == 1]].tolist() == ["x", "y", "z"]
    assert inter.time[0] == pytest.approx(1704067200.0)


def test_csv_wrong_column_names_the_columns(fixtures):
    p = fixtures / "csv_dates" / "clicks.csv"
    with pytest.raises(DataFormatError, match=r"no column 'user'.*\['visitor', 'product', 'when', 'stars'\]"):
        read_file(p, user_col="user", item_col="product")
    with pytest.raises(DataFormatError, match="--user-col"):
        read_file(p)  # no guessable user column


def test_bad_files(tmp_path, fixtures):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataFormatError, match="empty"):
        read_file(empty)
    with pytest.raises(DataFormatError, match="is a directory"):
        read_file(tmp_path)
    with pytest.raises(DataFormatError, match="no such file"):
        load(tmp_path / "nope.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("user,item\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match="UTF-8"):
        read_file(latin)
    bad_seq = tmp_path / "seq.txt"
    bad_seq.write_text("1 2 3\n2 x 4\n")
    with pytest.raises(DataFormatError, match="line 2"):
        read_file(bad_seq, "seqlines")
    trunc = tmp_path / "t.csv.gz"
    trunc.write_bytes(gzip.compress(b"user,item\n1,2\n" * 100)[:40])
    with pytest.raises(DataFormatError, match="truncated"):
        read_file(trunc)
    header_only = tmp_path / "h.csv"
    header_only.write_text("user,item\n")
    with pytest.raises(DataFormatError, match="no data rows"):
        read_file(header_only)
    with pytest.raises(UnknownNameError, match="Known formats"):
        read_file(fixtures / "pairs" / "pairs.txt", "parquetx")
    with pytest.raises(UnknownNameError, match="Known datasets"):
        load("beautyy")


def test_gzip_and_string_ids(tmp_path):
    p = tmp_path / "x.tsv.gz"
    p.write_bytes(gzip.compress(b"user_id\titem_id\trating\nA\t10\t5\nB\t10\t4\nA\t11\t3\n"))
    inter = read_file(p)
    assert inter.counts()["n_interactions"] == 3
    assert inter.user_ids.tolist() == ["A", "B"]
    assert inter.item_ids[1:].tolist() == [10, 11]
    np.testing.assert_allclose(inter.rating, [5, 3, 4])


def test_hostile_ids_and_times(tmp_path):
    """Huge ids, ids beyond float precision and zero-padded ids keep distinct labels; non-finite
    times are a clear error; negative times (before 1970) and duplicate rows are kept as given."""
    import warnings

    p = tmp_path / "huge.csv"
    p.write_text("user,item,timestamp\n1e23,5,-10\n2,12345678901234567891,-5\n2,12345678901234567892,3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy cast warning on the way
        inter = read_file(p)
    assert sorted(inter.user_ids.tolist()) == ["1e23", "2"]
    assert sorted(inter.item_ids[1:].tolist()) == ["12345678901234567891", "12345678901234567892", "5"]
    assert inter.counts()["n_interactions"] == 3 and inter.time.min() == -10
    near = tmp_path / "near.csv"  # 2**53 + 1 and 2**53 + 2 collide as floats; as int64 they stay apart
    near.write_text("user,item\n1,9007199254740993\n1,9007199254740994\n")
    assert sorted(read_file(near).item_ids[1:].tolist()) == [9007199254740993, 9007199254740994]
    padded = tmp_path / "padded.csv"
    padded.write_text("user,item\n1,007\n1,7\n")
    assert sorted(read_file(padded).item_ids[1:].tolist()) == ["007", "7"]
    floats = tmp_path / "floats.csv"
    floats.write_text("user,item\n1.0,3.0\n2.0,3.0\n")
    assert read_file(floats).item_ids[1:].tolist() == [3]
    dup = tmp_path / "dup.csv"
    dup.write_text("user,item,timestamp\n1,2,1\n1,2,1\n1,3,2\n")
    assert read_file(dup).counts()["n_interactions"] == 3
    inf = tmp_path / "inf.csv"
    inf.write_text("user,item,timestamp\n1,2,1\n1,3,inf\n")
    with pytest.raises(DataFormatError, match="row 2 has 'inf', not a finite time"):
        read_file(inf)

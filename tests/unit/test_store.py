"""The durable store (P23): both implementations behave alike, writes are atomic, a
deleted or replaced secret leaves no copy in the SQLite file or its WAL, and a file of
another version, another program or damaged bytes is a StoreError, never a reset."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlsvc.store import SCHEMA_VERSION, MemoryStore, SQLiteStore, Store, StoreError

SECRET = bytes(range(7, 7 + 48))  # a recognisable 48-byte "secret"


def stores(tmp_path: Path) -> list[Store]:
    return [MemoryStore(), SQLiteStore(tmp_path / "s.db")]


def test_both_stores_read_what_they_wrote(tmp_path: Path) -> None:
    for st in stores(tmp_path):
        st.write({"a/1": b"x", "a/2": b"y", "b/1": b"z"})
        st.write({"a/2": b"y2"}, deletes=["b/1"])
        assert st.get("a/2") == b"y2" and st.get("b/1") is None
        assert st.items("a/") == [("a/1", b"x"), ("a/2", b"y2")]
        assert st.items() == [("a/1", b"x"), ("a/2", b"y2")]
        st.close()


def test_sqlite_survives_reopening(tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "s.db")
    st.write({"k": SECRET})
    st.close()
    again = SQLiteStore(tmp_path / "s.db")
    assert again.get("k") == SECRET
    again.close()


def test_a_failed_write_changes_nothing(tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "s.db")
    st.write({"k": b"old"})
    with pytest.raises(TypeError):
        st.write({"k": b"new", "bad": "not bytes"})  # type: ignore[dict-item]
    assert st.get("k") == b"old" and st.get("bad") is None
    st.close()


def file_bytes(path: Path) -> bytes:
    out = path.read_bytes()
    for extra in (Path(str(path) + "-wal"), Path(str(path) + "-journal")):
        if extra.exists():
            out += extra.read_bytes()
    return out


@pytest.mark.parametrize("how", ["delete", "replace"])
def test_a_deleted_secret_leaves_no_copy_in_the_file(tmp_path: Path, how: str) -> None:
    path = tmp_path / "s.db"
    st = SQLiteStore(path)
    st.write({"epoch/1": SECRET, "other": b"kept" * 100})
    assert SECRET in file_bytes(path)  # the search can find it while it is stored
    if how == "delete":
        st.write({}, deletes=["epoch/1"])
    else:
        st.write({"epoch/1": b"\x00" * 10})
    assert SECRET not in file_bytes(path)
    assert SECRET[:16] not in file_bytes(path)
    st.close()
    assert SECRET[:16] not in file_bytes(path)


def test_unknown_schema_version_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
               (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version"):
        SQLiteStore(path)


def test_a_foreign_database_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not an mlsvc store"):
        SQLiteStore(path)


def test_a_corrupted_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    st = SQLiteStore(path)
    st.write({"k": b"v" * 5000})
    st.close()
    data = bytearray(path.read_bytes())
    data[:16] = b"this is no db!!\x00"  # the SQLite header
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        SQLiteStore(path)
    garbage = tmp_path / "g.db"
    garbage.write_bytes(b"\x01" * 4096)
    with pytest.raises(StoreError):
        SQLiteStore(garbage)

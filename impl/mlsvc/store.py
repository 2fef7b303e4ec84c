"""Durable state: a small key-value store interface with an in-memory and an SQLite
implementation (DRAFT-00-PROFILE P23).

P23: "An emulator's state lives in a store that survives a crash at any instruction: a
PPRF puncture, a generation consumed and a retained operation secret are durable before
any key derived from them leaves the process; a deleted secret is deleted from the store
too (no copy left in the file). The default store is SQLite (stdlib sqlite3, WAL,
`secure_delete` on)."

The interface is what the emulators and the delivery service need and no more: records
are bytes under string keys, `write` applies puts and deletes atomically (one SQLite
transaction, committed before it returns). `SQLiteStore`:

- opens the file in WAL mode with `PRAGMA secure_delete = ON` (freed pages are zeroed)
  and `synchronous = FULL` (a committed write survives power loss, not only a crash);
- after a write that overwrites or deletes, checkpoints the WAL with TRUNCATE, so the old
  page images (which hold the deleted secret) leave the WAL file too;
- keeps a schema version in a `meta` table: a file of another version, a file that is
  not this store's, or a damaged one is a `StoreError`, never a silent reset.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, Protocol

from mlsvc.errors import LocalError

SCHEMA_VERSION: Final = 1
"""The layout of `SQLiteStore` files: table meta(key, value), table records(key, value)."""


class StoreError(LocalError):
    """The store cannot be opened or written: unknown schema version, not a store of
    this library, damaged file, or I/O failure."""


class Store(Protocol):
    """Durable records: bytes under string keys."""

    def get(self, key: str) -> bytes | None: ...

    def items(self, prefix: str = "") -> list[tuple[str, bytes]]:
        """Every record whose key starts with `prefix`, sorted by key."""
        ...

    def write(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Apply all puts and deletes, or none (atomic and durable on return)."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """The in-memory store for fast tests: the same semantics, no file."""

    def __init__(self) -> None:
        self._records: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._records.get(key)

    def items(self, prefix: str = "") -> list[tuple[str, bytes]]:
        return sorted((k, v) for k, v in self._records.items() if k.startswith(prefix))

    def write(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        for k in deletes:
            self._records.pop(k, None)
        for k, v in puts.items():
            self._records[k] = bytes(v)

    def close(self) -> None:
        pass


class SQLiteStore:
    """A `Store` in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path, *, power_safe: bool = True) -> None:
        """`power_safe=False` (synchronous = NORMAL) keeps every committed write across a
        crash of the process but not across a power loss; faster, for simulations."""
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA secure_delete = ON")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()
            self._db.execute(f"PRAGMA synchronous = {'FULL' if power_safe else 'NORMAL'}")
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode")
            self._open_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable store: {exc}") from None

    def _open_schema(self) -> None:
        tables = {row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
            self._db.execute("COMMIT")
            return
        if tables != {"meta", "records"}:
            raise StoreError(f"{self.path} is not an mlsvc store (tables {sorted(tables)})")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != str(SCHEMA_VERSION):
            found = None if row is None else row[0]
            raise StoreError(f"{self.path}: store schema version {found!r}, this library "
                             f"reads {SCHEMA_VERSION}")
        check = self._db.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise StoreError(f"{self.path} is damaged: {check}")

    def get(self, key: str) -> bytes | None:
        try:
            row = self._db.execute("SELECT value FROM records WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: read failed: {exc}") from None
        return None if row is None else bytes(row[0])

    def items(self, prefix: str = "") -> list[tuple[str, bytes]]:
        try:
            rows = self._db.execute(
                "SELECT key, value FROM records WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(prefix), prefix)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: read failed: {exc}") from None
        return [(str(k), bytes(v)) for k, v in rows]

    def write(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        gone = list(deletes)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM records WHERE key = ?",
                                     [(k,) for k in gone])
                self._db.executemany(
                    "INSERT INTO records (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [(k, bytes(v)) for k, v in puts.items()])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            # the WAL holds the overwritten pages: fold it in and truncate it, so a
            # deleted or replaced secret leaves no copy in either file (P23)
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: write failed: {exc}") from None

    def close(self) -> None:
        self._db.close()


class PrefixedStore:
    """One `Store` shared by several owners, each under its own key prefix (several
    emulators and the DS in one SQLite file)."""

    def __init__(self, store: Store, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        return self.store.get(self.prefix + key)

    def items(self, prefix: str = "") -> list[tuple[str, bytes]]:
        n = len(self.prefix)
        return [(k[n:], v) for k, v in self.store.items(self.prefix + prefix)]

    def write(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        self.store.write({self.prefix + k: v for k, v in puts.items()},
                         [self.prefix + k for k in deletes])

    def close(self) -> None:
        pass

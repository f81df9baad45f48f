"""One run per output directory: an exclusive `flock` on OUTPUT_DIR/.mate-kd.lock for the run's lifetime.

Two runs into one directory would interleave their logs and checkpoints. The kernel releases a
`flock` when its holder dies however it dies (kill -9 included), so a lock file left behind by a
crash is stale by construction and never blocks the next run: no guessing from pids. The file
holds the holder's pid, host, start time and command, for the refusal message. It is removed on
release; a run that found it already there (stale) re-locks it, checking that the path still names
the file it locked (the previous holder may have removed it in between).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import time
import warnings
from typing import Optional

from .errors import ConfigError

LOCK_FILE = ".mate-kd.lock"
#: flock errors of file systems without lock support (some NFS mounts without a lock daemon, some FUSE ones).
NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS})


def _unwritable(path: str, err: OSError) -> ConfigError:
    return ConfigError(f"Cannot write to output directory {path}: {err.strerror}. Choose a writable --output_dir.")


def _read_holder(fd: int) -> dict:
    """The holder's details; it writes them right after locking, so wait a moment for them if empty."""
    for _ in range(20):
        try:
            holder = json.loads(os.pread(fd, 65536, 0).decode("utf-8"))
            if isinstance(holder, dict):
                return holder
        except ValueError:  # empty, or half written (UnicodeDecodeError is a ValueError)
            pass
        time.sleep(0.05)
    return {}


def _me() -> dict:
    argv = list(sys.argv)
    if argv and argv[0].endswith(os.path.join("mate_kd", "__main__.py")):
        argv[0:1] = ["python", "-m", "mate_kd"]
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": shlex.join(argv)}


def _in_use(output_dir: str, holder: dict, command: str) -> ConfigError:
    who = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {holder.get('started', '?')}"
    command_line = str(holder.get("command", ""))
    if len(command_line) > 240:  # its start and its last flags: the lock file holds it whole
        head, tail = command_line[:160].rsplit(" ", 1)[0], command_line[-80:]
        command_line = f"{head} ... {tail[tail.find(' --') + 1:]}"
    running = f", running `{command_line}`" if command_line else ""
    return ConfigError(f"--output_dir {output_dir} is in use by another mate-kd run: {who}{running}. {command} "
                       "would mix its files with that run's. Wait for that run to finish (or stop it), or choose "
                       "another --output_dir.")


class OutputDirLock:
    """Held from `acquire` (which creates the directory if needed) until `release` or the process's end."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir, self.path = output_dir, os.path.join(output_dir, LOCK_FILE)
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        """Take the lock, or refuse with the holder's pid, host, start time and command; changes nothing then."""
        try:
            os.makedirs(self.output_dir, exist_ok=True)
            self._fd = self._lock()
        except OSError as err:
            if err.errno not in NO_LOCKS:
                raise _unwritable(self.output_dir, err) from None
            warnings.warn(f"The file system of --output_dir {self.output_dir} does not support file locks "
                          f"({err.strerror}), so a second run into it would not be refused while this one runs: "
                          "start only one.", stacklevel=2)

    def _lock(self) -> int:
        silent_holders = 0
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                silent_holders += 1
                if holder or silent_holders > 2:  # a holder without details: `refuse_if_locked` looking
                    raise _in_use(self.output_dir, holder, "`mate-kd train`") from None
                continue
            except OSError:
                if os.fstat(fd).st_size == 0:  # created just now
                    os.unlink(self.path)
                os.close(fd)
                raise
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, json.dumps(_me()).encode("utf-8"), 0)
                    return fd
            except FileNotFoundError:
                pass  # its previous holder removed it after we opened it: lock the new one
            except OSError:
                self._fd = fd
                self.release()
                raise
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                os.unlink(self.path)  # while still locked, so no other run can be holding this file
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "OutputDirLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def refuse_if_locked(output_dir: str, command: str) -> None:
    """Refuse to write into a directory that a running `mate-kd train` holds (checked, not taken)."""
    path = os.path.join(output_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no lock file (or none readable): no run holds the directory
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _in_use(output_dir, _read_holder(fd), command) from None
    except OSError:
        pass  # a file system without locks: nothing to check
    finally:
        os.close(fd)

"""Writing files without following symlinks: every file hotmem writes (exports,
snapshots) goes to a fresh temporary file in the target's directory, opened
O_CREAT | O_EXCL | O_NOFOLLOW, and is renamed over the target, so a symlink
planted at the target or at the temporary name is replaced or refused, never
written through."""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from .errors import ConfigError

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def ensure_dir(base: str | Path, rel: str | Path = "") -> Path:
    """``base / rel`` as a directory: ``base`` is created as given (the user's
    choice of path); below it, no component may be a symlink."""
    base = Path(base)
    os.makedirs(base, exist_ok=True)
    cur = base
    for part in Path(rel).parts:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{cur}: exists and is not a directory (a symlink is "
                              "never written through)")
    return cur


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, _FLAGS, 0o644)
    except OSError as err:
        raise ConfigError(f"{path}: cannot write: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def symlink_atomic(target: str, path: str | Path) -> None:
    """Create (or replace) the symlink ``path`` -> ``target`` by renaming a fresh one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    os.symlink(target, tmp)
    os.replace(tmp, path)

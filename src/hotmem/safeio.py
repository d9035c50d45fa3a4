"""Writing files and folders without clobbering or following links.

hotmem may be run in a shared or attacker-writable place, so whatever it
writes goes first into something new that only it made, beside the target
(same folder, so same filesystem), and is then renamed into place:

- nothing is created except with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (files) or
  ``mkdir`` (folders, which fails on anything already there), relative to a
  folder descriptor, so a symlink planted anywhere is never followed;
- a target that is a symlink is refused; so is a file where a folder goes
  (and a folder where a file goes); the folders above the target are the
  user's choice and are followed (missing ones are made);
- an existing target is refused unless ``force``: a file is then replaced
  by one ``rename``; a folder is renamed aside, the new one renamed in, and
  of the old one only what hotmem wrote there (listed in its ``.hotmem-export``
  manifest) is deleted; anything else is left in the aside folder, whose name
  is reported.

An empty existing folder is replaced without ``force``.  Every failure is a
``SafeIOError`` (a ConfigError: exit 2 on the command line).
"""
from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from .errors import ConfigError
from .validate import clip

MANIFEST = ".hotmem-export"
_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class SafeIOError(ConfigError):
    """A target hotmem will not write, or a write that failed."""


def _name(path: str | Path) -> str:
    return clip(str(path), 120)


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_parent(path: Path, made: list[Path] | None = None) -> tuple[int, str]:
    """(descriptor of the target's folder, created if missing, the target's
    name); the folders made are appended to ``made``, outermost first."""
    name = path.name
    if name in ("", ".", ".."):
        raise SafeIOError(f"{_name(path)}: name a file or folder to write, not {name or '/'!r}")
    parent = path.parent
    try:
        missing = []
        p = parent
        while not os.path.lexists(p) and p != p.parent:
            missing.append(p)
            p = p.parent
        for p in reversed(missing):
            p.mkdir()
            if made is not None:
                made.append(p)
        # the folders above the target are the user's choice and may be
        # symlinks (a symlinked home); only the target itself is never followed
        return os.open(parent, _O_DIR & ~os.O_NOFOLLOW), name
    except FileExistsError:
        raise SafeIOError(f"{_name(parent)}: a file is in the way (it must be a folder)") from None
    except NotADirectoryError:
        raise SafeIOError(f"{_name(parent)}: a file is in the way (it must be a folder)") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise SafeIOError(f"{_name(parent)}: is a symlink; not followed") from None
        raise SafeIOError(f"{_name(parent)}: {err.strerror}") from None


def _fresh_name(dir_fd: int, base: str, what: str) -> str:
    """A name beside ``base`` that nothing has."""
    for _ in range(100):
        cand = f".{base[:60]}.hotmem-{what}-{secrets.token_hex(4)}"
        if _lstat(cand, dir_fd) is None:
            return cand
    raise SafeIOError(f"{_name(base)}: cannot find a free temporary name")


def _is_empty_dir(name: str, dir_fd: int) -> bool:
    fd = os.open(name, _O_DIR, dir_fd=dir_fd)
    try:
        return not os.listdir(fd)
    finally:
        os.close(fd)


def _rmtree_own(name: str, dir_fd: int) -> None:
    """Delete a tree hotmem made itself (its temporary folder), symlink-safe."""
    import shutil
    shutil.rmtree(name, dir_fd=dir_fd, ignore_errors=True)


# ---------------------------------------------------------------- one file

def write_file(path: str | Path, data: bytes | str | Callable[[BinaryIO], None],
               force: bool = False) -> Path:
    """Write a file atomically: a fresh temporary file beside it, then a
    link (no ``force``: fails if the target appeared meanwhile) or a rename
    (``force``: replaces an existing regular file)."""
    path = Path(path)
    pfd, name = _open_parent(path)
    try:
        _check_file_target(path, name, pfd, force)
        tmp = _fresh_name(pfd, name, "tmp")
        try:
            fd = os.open(tmp, _O_NEW, 0o644, dir_fd=pfd)
            with os.fdopen(fd, "wb") as fh:
                if callable(data):
                    data(fh)
                else:
                    fh.write(data.encode() if isinstance(data, str) else data)
                fh.flush()
                os.fsync(fh.fileno())
            _check_file_target(path, name, pfd, force)
            if force:
                os.rename(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
            else:
                os.link(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd, follow_symlinks=False)
                os.unlink(tmp, dir_fd=pfd)
        except FileExistsError:
            raise SafeIOError(f"{_name(path)}: exists (--force replaces it)") from None
        except OSError as err:
            raise SafeIOError(f"{_name(path)}: cannot write: {err.strerror}") from None
        finally:
            if _lstat(tmp, pfd) is not None:
                os.unlink(tmp, dir_fd=pfd)
    finally:
        os.close(pfd)
    return path


def _check_file_target(path: Path, name: str, pfd: int, force: bool) -> None:
    st = _lstat(name, pfd)
    if st is None:
        return
    if stat.S_ISLNK(st.st_mode):
        raise SafeIOError(f"{_name(path)}: is a symlink; not followed")
    if not stat.S_ISREG(st.st_mode):
        raise SafeIOError(f"{_name(path)}: exists and is not a regular file")
    if not force:
        raise SafeIOError(f"{_name(path)}: exists (--force replaces it)")


# ---------------------------------------------------------------- a folder

class DirWriter:
    """A folder written whole: files go into a fresh temporary folder beside
    the target; ``commit()`` renames it into place.  Use as a context
    manager (commit on success, the temporary folder deleted on error), or
    call ``check()`` first to refuse a target before any work is done."""

    def __init__(self, path: str | Path, force: bool = False):
        self.path = Path(path)
        self.force = force
        self.kept: str | None = None       # the aside folder left with foreign files
        self.written: list[str] = []
        self._made: list[Path] = []      # folders above the target made for it
        pfd, self._name = _open_parent(self.path, self._made)
        self._pfd: int | None = pfd       # None once closed (commit, abort)
        self._tmp: str | None = None
        self._tfd: int | None = None
        try:
            self.check()
            self._tmp = _fresh_name(pfd, self._name, "tmp")
            os.mkdir(self._tmp, 0o755, dir_fd=pfd)
            self._tfd = os.open(self._tmp, _O_DIR, dir_fd=pfd)
        except BaseException:
            self._cleanup()
            raise

    # ---- target checks

    def check(self) -> None:
        """Refuse a target that is a symlink, not a folder, or a non-empty
        folder without ``force``."""
        st = _lstat(self._name, self._parent_fd())
        if st is None:
            return
        if stat.S_ISLNK(st.st_mode):
            raise SafeIOError(f"{_name(self.path)}: is a symlink; not followed")
        if not stat.S_ISDIR(st.st_mode):
            raise SafeIOError(f"{_name(self.path)}: a file is in the way (it must be a folder)")
        if not self.force and not _is_empty_dir(self._name, self._parent_fd()):
            raise SafeIOError(f"{_name(self.path)}: exists and is not empty (--force "
                              "replaces it)")

    def _parent_fd(self) -> int:
        if self._pfd is None:
            raise SafeIOError(f"{_name(self.path)}: already committed or aborted")
        return self._pfd

    # ---- writing inside the temporary folder

    def _dir_fd(self, parts: tuple[str, ...]) -> int:
        """A descriptor of the folder ``parts`` inside the temporary folder,
        made if missing; never through a symlink."""
        if self._tfd is None:
            raise SafeIOError(f"{_name(self.path)}: already committed or aborted")
        fd = os.dup(self._tfd)
        for part in parts:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                nfd = os.open(part, _O_DIR, dir_fd=fd)
            finally:
                os.close(fd)
            fd = nfd
        return fd

    def open(self, rel: str) -> BinaryIO:
        """A new file at ``rel`` (a relative path with / separators), binary."""
        parts = tuple(p for p in rel.split("/") if p)
        if not parts or any(p in (".", "..") for p in parts):
            raise SafeIOError(f"{_name(rel)}: not a relative path inside the folder")
        dfd = self._dir_fd(parts[:-1])
        try:
            fd = os.open(parts[-1], _O_NEW, 0o644, dir_fd=dfd)
        except OSError as err:
            raise SafeIOError(f"{_name(self.path / rel)}: cannot write: {err.strerror}") from None
        finally:
            os.close(dfd)
        self.written.append("/".join(parts))
        return os.fdopen(fd, "wb")

    def write_text(self, rel: str, text: str) -> None:
        with self.open(rel) as fh:
            fh.write(text.encode())

    def symlink(self, rel: str, target: str) -> None:
        """A new symlink at ``rel`` pointing at ``target`` (as sysfs links are)."""
        parts = tuple(p for p in rel.split("/") if p)
        if not parts or any(p in (".", "..") for p in parts):
            raise SafeIOError(f"{_name(rel)}: not a relative path inside the folder")
        dfd = self._dir_fd(parts[:-1])
        try:
            os.symlink(target, parts[-1], dir_fd=dfd)
        except OSError as err:
            raise SafeIOError(f"{_name(self.path / rel)}: cannot link: {err.strerror}") from None
        finally:
            os.close(dfd)
        self.written.append("/".join(parts))

    # ---- into place

    def commit(self) -> Path:
        """Rename the temporary folder into place (see the module docstring)."""
        if self._tmp is None:
            raise SafeIOError(f"{_name(self.path)}: already committed")
        self.write_text(MANIFEST, "".join(f"{p}\n" for p in self.written + [MANIFEST]))
        pfd = self._parent_fd()
        if self._tfd is not None:
            os.close(self._tfd)
            self._tfd = None
        try:
            self.check()
            st = _lstat(self._name, pfd)
            aside = None
            if st is not None and not _is_empty_dir(self._name, pfd):
                aside = _fresh_name(pfd, self._name, "old")
                os.rename(self._name, aside, src_dir_fd=pfd, dst_dir_fd=pfd)
            # rename() replaces an empty folder and fails on anything else
            try:
                os.rename(self._tmp, self._name, src_dir_fd=pfd, dst_dir_fd=pfd)
            except OSError:
                if aside is not None:     # something took the name meanwhile: put it back
                    try:
                        os.rename(aside, self._name, src_dir_fd=pfd, dst_dir_fd=pfd)
                    except OSError:
                        self.kept = aside
                raise
            self._tmp = None
            self._made = []
            if aside is not None:
                self.kept = aside if _delete_own(aside, pfd) else None
        except OSError as err:
            raise SafeIOError(f"{_name(self.path)}: cannot put in place: {err.strerror}") from None
        finally:
            self._cleanup()
        return self.path

    def kept_path(self) -> Path | None:
        return None if self.kept is None else self.path.parent / self.kept

    def abort(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tfd is not None:
            os.close(self._tfd)
            self._tfd = None
        if self._tmp is not None and self._pfd is not None:
            # never without its folder's descriptor: that would be cwd-relative
            _rmtree_own(self._tmp, self._pfd)
        self._tmp = None
        if self._pfd is not None:
            os.close(self._pfd)
            self._pfd = None
        for p in reversed(self._made):     # nothing was put in place: undo them
            try:
                p.rmdir()
            except OSError:
                break
        self._made = []

    def __enter__(self) -> DirWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def _delete_own(aside: str, pfd: int) -> bool:
    """Delete from the renamed-aside folder the regular files its manifest
    lists (hotmem wrote them) and the folders holding them once empty; True
    when something else remains (the folder is kept)."""
    fd = os.open(aside, _O_DIR, dir_fd=pfd)
    try:
        try:
            mfd = os.open(MANIFEST, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
            with os.fdopen(mfd, "rb") as fh:
                listed = fh.read(64 << 20).decode("utf-8", "replace").splitlines()
        except OSError:
            listed = []
        dirs: set[tuple[str, ...]] = set()
        for rel in listed:
            parts = tuple(p for p in rel.split("/") if p)
            if not parts or any(p in (".", "..") for p in parts):
                continue
            _at(fd, parts, _unlink_regular)
            dirs.update(parts[:k] for k in range(1, len(parts)))
        for parts in sorted(dirs, key=len, reverse=True):
            _at(fd, parts, _rmdir_empty)
        empty = not os.listdir(fd)
    finally:
        os.close(fd)
    if empty:
        os.rmdir(aside, dir_fd=pfd)
    return not empty


def _at(fd: int, parts: tuple[str, ...], fn: Callable[[int, str], None]) -> None:
    """fn(folder descriptor, last part), the folder reached from fd without
    following a symlink; nothing if it cannot be reached."""
    dfd = os.dup(fd)
    try:
        for part in parts[:-1]:
            try:
                nfd = os.open(part, _O_DIR, dir_fd=dfd)
            except OSError:
                return
            os.close(dfd)
            dfd = nfd
        fn(dfd, parts[-1])
    finally:
        os.close(dfd)


def _unlink_regular(dfd: int, name: str) -> None:
    # a regular file, or a symlink (the sysfs links hotmem writes): unlinking
    # a link never touches what it points at
    st = _lstat(name, dfd)
    if st is not None and (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        os.unlink(name, dir_fd=dfd)


def _rmdir_empty(dfd: int, name: str) -> None:
    st = _lstat(name, dfd)
    if st is not None and stat.S_ISDIR(st.st_mode):
        try:
            os.rmdir(name, dir_fd=dfd)
        except OSError:       # not empty: it holds something hotmem did not write
            pass

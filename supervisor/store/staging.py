"""Staging: building the new store's tree in a sibling directory, entry by entry.

A commit stages the working checkpoint paths (copied, or renamed when the program has exited);
``commit_state`` stages the files of the current store again. Either way every file is made
durable (``fs.copy_entry``) and recorded in a ``_Staged`` (the manifest's entries to be).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import CheckpointPathMissing, StoreError
from .fs import _lexists, _writeback_starter, checksum_fd, copy_entry, log
from .layout import Layout
from .manifest import _Staged

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


class Staging(Layout):
    """The staging half of a commit (see the package docstring)."""

    def _stage_file(self, src: Path, dst: Path, rel: str, staged: _Staged) -> None:
        method, size, crc, st = copy_entry(self.fs, src, dst)
        assert st is not None
        staged.used(method)
        staged.add_file(rel, size, crc, st.st_mode, st.st_mtime_ns)

    def _stage_tree(self, src: Path, dst: Path, rel: str, staged: _Staged) -> None:
        """Copy ``src`` (file, directory or symlink) to the new name ``dst``; record entries."""
        fs = self.fs
        st = fs.lstat(src)
        mode = st.st_mode
        if stat.S_ISREG(mode):
            self._stage_file(src, dst, rel, staged)
        elif stat.S_ISLNK(mode):
            target = fs.readlink(src)
            fs.symlink(target, dst)
            staged.entries.append({"path": rel, "type": "symlink", "target": target})
        elif stat.S_ISDIR(mode):
            fs.mkdir(dst, 0o700)
            staged.entries.append({"path": rel, "type": "dir", "mode": stat.S_IMODE(mode)})
            for name in sorted(fs.listdir(src)):
                self._stage_tree(src / name, dst / name, f"{rel}/{name}", staged)
            fs.chmod(dst, stat.S_IMODE(mode))
            fs.fsync_dir(dst)
        elif rel in self.paths:
            raise self._special_file(rel)
        else:
            log.warning("skipping %s: not a regular file, directory or symlink", src)

    def _special_file(self, rel: str) -> StoreError:
        """A checkpoint path itself must hold data: committing nothing would lose the checkpoint."""
        return StoreError(f"checkpoint path {rel!r} is not a regular file or directory (a FIFO, socket "
                          f"or device); nothing was committed; {self._intact()}")

    def _record_moved(self, path: Path, rel: str, staged: _Staged) -> None:
        """Record (and fsync) a tree that was renamed into staging."""
        fs = self.fs
        st = fs.lstat(path)
        mode = st.st_mode
        if stat.S_ISREG(mode):
            fd = fs.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                start_writeback = _writeback_starter()
                if start_writeback is not None:
                    start_writeback(fd, 0, 0)  # the disk writes what is dirty while we read
                size, crc = checksum_fd(fs, fd)
                fs.fsync(fd)
            finally:
                fs.close(fd)
            staged.add_file(rel, size, crc, mode, st.st_mtime_ns)
        elif stat.S_ISLNK(mode):
            staged.entries.append({"path": rel, "type": "symlink", "target": fs.readlink(path)})
        elif stat.S_ISDIR(mode):
            staged.entries.append({"path": rel, "type": "dir", "mode": stat.S_IMODE(mode)})
            for name in sorted(fs.listdir(path)):
                self._record_moved(path / name, f"{rel}/{name}", staged)
            fs.fsync_dir(path)
        elif rel in self.paths:
            raise self._special_file(rel)
        else:
            log.warning("skipping %s: not a regular file, directory or symlink", path)

    def _preflight(self) -> None:
        """Refuse before staging anything: a missing checkpoint path or a symlinked one."""
        for rel in self.paths:
            if _lexists(self.fs, self.sandbox / rel) is None:
                raise CheckpointPathMissing(
                    f"checkpoint path {rel!r} does not exist in {self.sandbox}; "
                    f"nothing was committed"
                )
            problem = self._symlink_problem(rel)
            if problem:
                raise StoreError(problem + "; nothing was committed")

    def _stage_from_working(self, staging: Path, move: bool, moved: list[str]) -> _Staged:
        # The method only ever gets slower: rename < reflink < copy.
        staged = _Staged(entries=[], method="rename" if move else "reflink")
        for rel in self.paths:
            src = self.sandbox / rel
            dst = staging / rel
            self._makedirs(staging, rel)
            if move:
                moved.append(rel)  # before the rename: a failure may come after it happened
                try:
                    self.fs.rename(src, dst)
                except OSError as e:
                    if e.errno != errno.EXDEV:
                        raise
                    moved.pop()
                    self._stage_tree(src, dst, rel, staged)
                else:
                    self._record_moved(dst, rel, staged)
            else:
                self._stage_tree(src, dst, rel, staged)
        return staged

    def _stage_from_store(self, staging: Path, man: dict[str, Any]) -> _Staged:
        """Copy the committed entries of the current store; keep their recorded checksums."""
        staged = _Staged(entries=[], method="reflink")
        fs = self.fs
        for top in man["paths"]:
            self._makedirs(staging, top)
        dirs: list[tuple[Path, int]] = []
        for ent in man["entries"]:
            rel = ent["path"]
            src, dst = self.store / rel, staging / rel
            if ent["type"] == "dir":
                fs.mkdir(dst, 0o700)
                dirs.append((dst, ent["mode"]))
            elif ent["type"] == "symlink":
                fs.symlink(ent["target"], dst)
            else:
                method, _, _, _ = copy_entry(
                    fs, src, dst, mode=ent["mode"], mtime_ns=ent["mtime_ns"], size=ent["size"],
                    mismatch=f"{rel!r} in store {self.store} does not have its recorded size",
                )
                staged.used(method)
                staged.bytes += ent["size"]
                staged.files += 1
            staged.entries.append(dict(ent))
        for d, mode in reversed(dirs):
            fs.chmod(d, mode)
            fs.fsync_dir(d)
        return staged

    # ---------------------------------------------------------------- commit


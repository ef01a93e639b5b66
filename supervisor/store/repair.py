"""Repair: what the next start (and a failed commit) does about a store left in a bad state.

``cleanup_staging`` removes what a killed commit or restore left and undoes a half-done
two-rename swap; ``quarantine`` moves a damaged store aside (never deletes it); ``_abandon``
undoes a commit that failed before its swap.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import StoreError
from .fs import _describe, _lexists, log
from .layout import (
    CORRUPT,
    OLD,
    RESTORE_TMP,
    RESTORE_TRASH,
    STAGING_COPY,
    STAGING_MOVE,
    TRASH,
    Layout,
    _store_errors,
    _utc_stamp,
)
from .manifest import MANIFEST


class Repair(Layout):
    """The store's repairs (see the module docstring)."""

    def quarantine(self) -> Path:
        """Move the store aside (never delete it) to ``<store>.corrupt-<UTC time>[-n]``."""
        if _lexists(self.fs, self.store) is None:
            raise StoreError(f"no store at {self.store} to quarantine")
        base = f"{self.name}{CORRUPT}{_utc_stamp()}"
        target = self.parent / base
        n = 0
        while _lexists(self.fs, target) is not None:
            n += 1
            target = self.parent / f"{base}-{n}"
        try:
            self.fs.rename(self.store, target)
            self.fs.fsync_dir(self.parent)
        except OSError as e:
            raise StoreError(
                f"cannot move the store aside: {_describe(e, self.store)}", cause=e
            ) from e
        log.warning("moved store %s aside to %s", self.store, target)
        return target

    def _abandon(self, staging: Path, moved: list[str]) -> None:
        """Undo a failed commit: put moved working paths back, remove staging. Best effort."""
        for rel in moved:
            src, dst = staging / rel, self.sandbox / rel
            if _lexists(self.fs, src) is None or _lexists(self.fs, dst) is not None:
                continue
            try:
                self.fs.rename(src, dst)
            except OSError as e:
                log.error("could not move %s back to %s: %s", staging / rel, self.sandbox / rel, e)
        if _lexists(self.fs, staging) is not None:
            try:
                self.fs.rmtree(staging)
            except OSError as e:
                log.warning("could not remove staging %s (%s); the next start will", staging, e)

    # ---------------------------------------------------------------- next start

    @_store_errors("cleaning up the store's leftovers")
    def cleanup_staging(self) -> list[Path]:
        """Remove what a killed commit or restore left; undo a half-done two-rename swap.

        Returns the paths that were removed (or renamed back into place).
        """
        fs = self.fs
        done: list[Path] = []
        try:
            names = sorted(fs.listdir(self.parent))
        except FileNotFoundError:
            return done
        except OSError as e:
            raise StoreError(
                f"cannot list {self.parent}: {_describe(e, self.parent)}", cause=e
            ) from e
        olds = [n for n in names if n.startswith(self.name + OLD)]
        if _lexists(fs, self.store) is None and olds:
            # Killed between "store -> old" and "staging -> store": put the old one back.
            pick = next((n for n in olds if _lexists(fs, self.parent / n / MANIFEST)), olds[0])
            try:
                fs.rename(self.parent / pick, self.store)
                fs.fsync_dir(self.parent)
            except OSError as e:
                raise StoreError(
                    f"cannot put the old store {self.parent / pick} back: "
                    f"{_describe(e, self.store)}",
                    cause=e,
                ) from e
            log.warning("a commit was interrupted mid-swap; restored the old store from %s", pick)
            done.append(self.parent / pick)
            names.remove(pick)
        prefixes = tuple(self.name + t for t in (STAGING_COPY, STAGING_MOVE, OLD, TRASH))
        leftovers = [n for n in names if n.startswith(prefixes)]
        for n in leftovers:
            path = self.parent / n
            if n.startswith(self.name + STAGING_MOVE) and _lexists(fs, path / MANIFEST) is None:
                self._move_back(path)
        for rel in self.paths:
            where = (self.sandbox / rel).parent
            base = "." + (self.sandbox / rel).name
            with contextlib.suppress(OSError):
                for n in fs.listdir(where):
                    if n.startswith((base + RESTORE_TMP, base + RESTORE_TRASH)):
                        self._remove(where / n, done)
        for n in leftovers:
            path = self.parent / n
            if _lexists(fs, path) is not None:
                self._remove(path, done)
        if done:
            with contextlib.suppress(OSError):
                fs.fsync_dir(self.parent)
        return done

    def _remove(self, path: Path, done: list[Path]) -> None:
        try:
            self._rm(path)
        except FileNotFoundError:
            return
        except OSError as e:
            raise StoreError(f"cannot remove leftover {path}: {_describe(e, path)}", cause=e) from e
        log.info("removed leftover %s", path)
        done.append(path)

    def _move_back(self, staging: Path) -> None:
        """A killed move-commit: give working paths that are still in staging back."""
        for rel in self.paths:
            src, dst = staging / rel, self.sandbox / rel
            if _lexists(self.fs, src) is not None and _lexists(self.fs, dst) is None:
                try:
                    self._makedirs(self.sandbox, rel)
                    self.fs.rename(src, dst)
                    log.warning("moved %s back from an interrupted commit", dst)
                except OSError as e:
                    log.error("could not move %s back: %s", dst, e)


"""The protocol: commit, verify, restore (the ``Store`` class; see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import CorruptStore, StoreError
from ..records import record
from .fingerprint import fingerprint
from .fs import _describe, _is_transient, _lexists, checksum_fd, copy_entry, log, swap
from .layout import OLD, RESTORE_TMP, RESTORE_TRASH, STAGING_COPY, STAGING_MOVE, TRASH, _store_errors, _token, _utc_iso
from .manifest import (
    CHECKSUM,
    MANIFEST,
    STATE,
    _Staged,
    content_id,
    encode_manifest,
    encode_state,
    load_manifest,
    load_state,
)
from .repair import Repair
from .staging import Staging

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Callable, Optional


@record(frozen=True)
class CommitResult:
    bytes: int
    seconds: float
    files: int
    method: str  # "rename" | "reflink" | "copy": the slowest method any file needed
    fingerprint: Any = None  # the working paths' fingerprint the commit was checked against


class CheckpointChanged(StoreError):
    """The checkpoint paths changed before or while they were copied: nothing was committed.

    Not a failure of the store: the copy would have mixed two versions of the checkpoint. The
    caller waits for the next complete checkpoint.
    """


class EmptyCheckpoint(StoreError):
    """The checkpoint paths hold no data (no file, only empty ones): nothing was committed."""


@record(frozen=True)
class RestoreResult:
    bytes: int
    seconds: float
    files: int




class _Reading(Repair):
    """Reading a committed store: look for it, verify it, read its state, restore from it."""

    def exists(self) -> bool:
        """True when something at the store path needs verify(): a store directory with a manifest,
        or anything else that is not an empty directory (a plain file, a partial transfer).

        False when the path is absent or an empty directory: there is no committed checkpoint.
        """
        st = _lexists(self.fs, self.store)
        if st is None:
            return False
        if not stat.S_ISDIR(st.st_mode):
            return True
        try:
            return bool(self.fs.listdir(self.store))
        except OSError:
            return True

    def _load_manifest(self, root: Optional[Path] = None) -> dict[str, Any]:
        return load_manifest(self.fs, self.store if root is None else root)

    def _load_state(self, man: dict[str, Any], root: Optional[Path] = None) -> dict[str, Any]:
        return load_state(self.fs, man, self.store if root is None else root)

    @_store_errors("reading the store's state")
    def read_state(self) -> dict[str, Any] | None:
        """The state saved with the last commit (its digest is checked); None when no store."""
        if _lexists(self.fs, self.store) is None:
            return None
        man = self._load_manifest()
        return self._load_state(man)

    @_store_errors("verifying the store")
    def verify(self) -> dict[str, Any]:
        """Check every manifest entry (type, size, checksum, link target); return the state.

        Raises CorruptStore with a one-line reason. Files the manifest does not list (SPOOL
        keeps files a later checkpoint left out) are ignored, logged and kept in
        ``self.extra_files``.
        """
        man = self._load_manifest()
        state = self._load_state(man)
        listed = {STATE, MANIFEST}
        for top in man["paths"]:
            parts = top.split("/")
            for i in range(1, len(parts)):
                listed.add("/".join(parts[:i]))
        for ent in man["entries"]:
            rel = ent["path"]
            listed.add(rel)
            path = self.store / rel
            try:
                st = self.fs.lstat(path)
            except FileNotFoundError:
                raise CorruptStore(f"store {self.store} lacks {rel!r}") from None
            except OSError as e:
                raise StoreError(f"cannot stat {rel!r}: {_describe(e, path)}", cause=e) from e
            kind = ent["type"]
            if kind == "dir":
                if not stat.S_ISDIR(st.st_mode):
                    raise CorruptStore(f"{rel!r} in store {self.store} is not a directory")
            elif kind == "symlink":
                if not stat.S_ISLNK(st.st_mode) or self.fs.readlink(path) != ent["target"]:
                    raise CorruptStore(f"{rel!r} in store {self.store} is not the recorded symlink")
            else:
                if not stat.S_ISREG(st.st_mode):
                    raise CorruptStore(f"{rel!r} in store {self.store} is not a regular file")
                if st.st_size != ent["size"]:
                    raise CorruptStore(
                        f"{rel!r} in store {self.store} has {st.st_size} bytes, the manifest "
                        f"says {ent['size']}"
                    )
                try:
                    fd = self.fs.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                    try:
                        size, crc = checksum_fd(self.fs, fd)
                    finally:
                        self.fs.close(fd)
                except OSError as e:
                    raise StoreError(f"cannot read {rel!r}: {_describe(e, path)}", cause=e) from e
                if size != ent["size"] or f"{crc:08x}" != ent[CHECKSUM]:
                    raise CorruptStore(
                        f"{rel!r} in store {self.store} does not match its {CHECKSUM} checksum"
                    )
        self.extra_files = sorted(self._walk_names(self.store, "") - listed)
        if self.extra_files:
            log.warning(
                "store %s holds %d file(s) the manifest does not list (left by an older "
                "checkpoint; ignored): %s",
                self.store,
                len(self.extra_files),
                ", ".join(self.extra_files[:10]),
            )
        return state

    def _walk_names(self, root: Path, rel: str) -> set[str]:
        out: set[str] = set()
        try:
            names = self.fs.listdir(root / rel if rel else root)
        except OSError:
            return out
        for name in names:
            sub = f"{rel}/{name}" if rel else name
            out.add(sub)
            st = _lexists(self.fs, root / sub)
            if st is not None and stat.S_ISDIR(st.st_mode):
                out |= self._walk_names(root, sub)
        return out

    def content_id(self) -> str:
        """A digest of the committed files' names, types, sizes, checksums and link targets.

        Two stores with the same content_id hold the same bytes (times and modes aside).
        """
        return content_id(self._load_manifest())

    @_store_errors("restoring the checkpoint")
    def restore(self) -> RestoreResult:
        """Copy the committed files back to their working paths (call verify() first).

        Each checkpoint path is replaced atomically (a temporary sibling, then a rename or an
        exchange); a directory is replaced whole, so files the store lacks disappear from it.
        Copies are reflinks where possible, else copies: never renames or hard links, so the
        store survives a crash of this run.
        """
        t0 = time.monotonic()
        man = self._load_manifest()
        configured = set(self.paths)
        tops = [p for p in man["paths"] if p in configured]
        for p in man["paths"]:
            if p not in configured:
                log.warning("store holds %r, which is no longer a checkpoint path: not restored", p)
        by_top: dict[str, list[dict[str, Any]]] = {t: [] for t in tops}
        for ent in man["entries"]:
            for t in tops:
                if ent["path"] == t or ent["path"].startswith(t + "/"):
                    by_top[t].append(ent)
        total = files = 0
        for top in tops:
            b, f = self._restore_one(top, by_top[top])
            total += b
            files += f
        return RestoreResult(total, time.monotonic() - t0, files)

    def _restore_one(self, top: str, entries: list[dict[str, Any]]) -> tuple[int, int]:
        fs = self.fs
        problem = self._symlink_problem(top)
        if problem:
            raise StoreError(problem + "; nothing was restored there")
        dst = self.sandbox / top
        tmp = dst.parent / f".{dst.name}{RESTORE_TMP}{_token()}"
        total = files = 0
        try:
            self._makedirs(self.sandbox, top)
            dirs: list[tuple[Path, int]] = []
            for ent in entries:
                rel = ent["path"]
                target = tmp / rel[len(top) + 1:] if rel != top else tmp
                src = self.store / rel
                if ent["type"] == "dir":
                    fs.mkdir(target, 0o700)
                    dirs.append((target, ent["mode"]))
                elif ent["type"] == "symlink":
                    fs.symlink(ent["target"], target)
                else:
                    copy_entry(
                        fs, src, target, mode=ent["mode"], mtime_ns=ent["mtime_ns"],
                        size=ent["size"],
                        mismatch=f"{rel!r} in store {self.store} does not have its recorded size",
                    )
                    total += ent["size"]
                    files += 1
            for d, mode in reversed(dirs):
                fs.chmod(d, mode)
                fs.fsync_dir(d)
            self._put_in_place(tmp, dst)
            with contextlib.suppress(OSError):
                fs.fsync_dir(dst.parent)
        except OSError as e:
            self._discard(tmp)
            raise StoreError(
                f"restore of {top!r} failed: {_describe(e, dst)}; the committed checkpoint in "
                f"{self.store} is intact",
                cause=e,
            ) from e
        except BaseException:
            self._discard(tmp)
            raise
        return total, files

    def _put_in_place(self, tmp: Path, dst: Path) -> None:
        fs = self.fs
        st = _lexists(fs, dst)
        if st is None:
            fs.rename(tmp, dst)
            return
        tmp_is_dir = stat.S_ISDIR(fs.lstat(tmp).st_mode)
        if not tmp_is_dir and not stat.S_ISDIR(st.st_mode):
            fs.replace(tmp, dst)
            return
        trash = dst.parent / f".{dst.name}{RESTORE_TRASH}{_token()}"
        old, self._exchange_ok = swap(
            fs, tmp, dst, trash, exchange=self._exchange_ok,
            happened=lambda: _lexists(fs, tmp) is None and _lexists(fs, dst) is not None,
        )
        self._discard(old)  # the working tree that was there



class Store(_Reading, Staging):
    """The committed copy of a program's checkpoint paths. See the package docstring."""

    def fingerprint(self) -> tuple[tuple[Any, ...], ...]:
        """The working checkpoint paths' fingerprint (``fingerprint.fingerprint``: what it
        promises and what it does not)."""
        return fingerprint(self.fs, self.sandbox, self.paths)

    @_store_errors("checkpoint commit")
    def commit(
        self,
        state: dict[str, Any],
        *,
        move: bool = False,
        expect: Any = None,
        on_staged: Optional[Callable[[], None]] = None,
        allow_empty: bool = True,
    ) -> CommitResult:
        """Commit every checkpoint path and ``state`` as one all-or-nothing step.

        ``move=True`` renames the working paths into the store (O(1)); only once the program
        has exited: afterwards the working paths are gone (restore() brings them back).

        ``expect``: the fingerprint (``fingerprint()``) of the working paths that the completion
        rules approved. The commit checks it before staging and, for a copy, again after every
        file was copied; a difference raises :class:`CheckpointChanged` and commits nothing, so
        a file rewritten during the copy is never stored torn or beside files of another step.
        ``on_staged`` is called once the working paths are no longer read (after that check),
        even when the commit fails: the caller continues a program it held still.
        ``allow_empty=False`` refuses (:class:`EmptyCheckpoint`) paths that hold no byte of data.
        """
        payload = encode_state(state)

        def stage(staging: Path, moved: list[str]) -> _Staged:
            try:
                if expect is not None:
                    self._unchanged(expect, "before it was copied")
                staged = self._stage_from_working(staging, move, moved)
                if expect is not None and not move:
                    self._unchanged(expect, "while it was copied")
            finally:
                if on_staged is not None:
                    on_staged()
            if not allow_empty and staged.bytes == 0:
                raise EmptyCheckpoint(
                    f"the checkpoint paths hold no data (no file, or only empty files); nothing "
                    f"was committed; {self._intact()}"
                )
            return staged

        result = self._retrying(lambda: self._commit_once(payload, stage, self.paths, move, True))
        if expect is not None:
            result = CommitResult(result.bytes, result.seconds, result.files, result.method, expect)
        return result

    def _unchanged(self, expect: Any, when: str) -> None:
        if self.fingerprint() != expect:
            raise CheckpointChanged(
                f"the checkpoint files changed {when}; nothing was committed (a copy now would mix "
                f"two versions); {self._intact()}"
            )

    @_store_errors("checkpoint commit")
    def commit_state(self, state: dict[str, Any]) -> CommitResult:
        """Commit the files of the current store again with a new ``state`` (same atomicity).

        Without a store, commits a store that holds only the state (no checkpoint paths).
        """
        payload = encode_state(state)
        man: Optional[dict[str, Any]] = None
        st = _lexists(self.fs, self.store)
        if st is not None and self.exists():
            try:
                man = self._load_manifest()
            except CorruptStore:
                raise
            except StoreError as e:
                raise StoreError(f"checkpoint commit failed: {e}; {self._intact()}", cause=e) from e
        if man is None:
            return self._retrying(
                lambda: self._commit_once(payload, lambda s, m: _Staged([]), [], False)
            )
        paths = list(man["paths"])
        manifest = man

        def stage(staging: Path, moved: list[str]) -> _Staged:
            return self._stage_from_store(staging, manifest)

        return self._retrying(lambda: self._commit_once(payload, stage, paths, False))

    def _retrying(self, attempt: Callable[[], CommitResult]) -> CommitResult:
        started = time.monotonic()
        try:
            # The first attempt runs without tenacity: importing it costs ~3 MB of RSS and several
            # ms at every commit, and it is needed only after a transient error.
            try:
                return attempt()
            except OSError as e:
                if not _is_transient(e) or time.monotonic() - started >= self.retry_seconds:
                    raise
                log.info("transient error during commit, retrying: %s", e)
                time.sleep(0.02)  # the first wait of the exponential backoff below
            import tenacity

            retryer = tenacity.Retrying(
                retry=tenacity.retry_if_exception(_is_transient),
                stop=tenacity.stop_after_delay(max(0.0, self.retry_seconds - (time.monotonic() - started))),
                wait=tenacity.wait_exponential(multiplier=0.04, max=1.0),  # 0.04, 0.08... after the 0.02
                reraise=True,
                before_sleep=lambda rs: log.info(
                    "transient error during commit, retrying: %s", rs.outcome and rs.outcome.exception()
                ),
            )
            result: CommitResult = retryer(attempt)
        except OSError as e:  # transient errors that outlasted the budget
            raise StoreError(
                f"checkpoint commit failed after retrying for {self.retry_seconds:g} s: "
                f"{_describe(e, self.store)}; {self._intact()}",
                cause=e,
            ) from e
        return result


    def _commit_once(
        self,
        payload: bytes,
        stage: Callable[[Path, list[str]], _Staged],
        paths: Sequence[str],
        move: bool,
        working: bool = False,
    ) -> CommitResult:
        fs = self.fs
        t0 = time.monotonic()
        st = _lexists(fs, self.store)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise CorruptStore(
                f"store path {self.store} is not a directory; nothing was committed (move it "
                f"aside: quarantine)"
            )
        token = _token()
        staging = self.parent / f"{self.name}{STAGING_MOVE if move else STAGING_COPY}{token}"
        moved: list[str] = []
        swapped = False
        old: Optional[Path] = None
        try:
            if working:
                self._preflight()
            fs.mkdir(staging, 0o755)
            staged = stage(staging, moved)
            self._fsync_parents(staging, paths)
            self._write_file(staging / STATE, payload)
            manifest = encode_manifest(token, _utc_iso(), paths, payload, staged)
            self._write_file(staging / MANIFEST, manifest)
            fs.fsync_dir(staging)
            old = self._swap(staging, token)
            swapped = True
        except BaseException as e:
            if not swapped:
                self._abandon(staging, moved)
            if isinstance(e, CorruptStore):
                raise
            if isinstance(e, OSError):
                if _is_transient(e):
                    raise
                raise StoreError(
                    f"checkpoint commit failed: {_describe(e, staging)}; {self._intact()}",
                    cause=e,
                ) from e
            raise
        self._finish(old)
        method = staged.method if staged.files else ("rename" if move else "copy")
        return CommitResult(staged.bytes, time.monotonic() - t0, staged.files, method)

    def _swap(self, staging: Path, token: str) -> Optional[Path]:
        """Put ``staging`` at the store path; return where the old store now is (or None).

        A rename that reports an error may still have happened (NFS retransmits, or an error
        reported after the fact): before giving up, look whether the store is already ours.
        """
        fs = self.fs
        st = _lexists(fs, self.store)
        if st is None or not fs.listdir(self.store):
            try:
                fs.rename(staging, self.store)  # also replaces an empty directory atomically
            except OSError:
                if self._is_ours(token):
                    return None
                raise
            return None
        tried = self._exchange_ok
        old, self._exchange_ok = swap(
            fs, staging, self.store, self.parent / f"{self.name}{OLD}{token}",
            exchange=tried, happened=lambda: self._is_ours(token),
        )
        if tried and not self._exchange_ok:
            log.info("renameat2(RENAME_EXCHANGE) unavailable here; using two renames")
        return old

    def _is_ours(self, token: str) -> bool:
        """Whether the store path holds the commit ``token`` (the swap happened). Never raises."""
        try:
            return self._load_manifest().get("commit") == token
        except Exception:
            return False

    def _finish(self, old: Optional[Path]) -> None:
        """After the swap: make it durable, then drop (or keep) the old store. Never raises."""
        fs = self.fs
        try:
            fs.fsync_dir(self.parent)
        except OSError as e:
            log.warning(
                "committed, but fsync of %s failed (%s); the old store stays until the next start",
                self.parent, _describe(e, self.parent),
            )
            return
        if old is None:
            return
        try:
            if self.keep_previous:
                self._keep_as_previous(old)
            else:
                fs.rmtree(old)
        except OSError as e:
            log.warning("could not remove the old store %s (%s); the next start will", old, e)

    def _keep_as_previous(self, old: Path) -> None:
        fs = self.fs
        if _lexists(fs, self.previous) is None:
            fs.rename(old, self.previous)
        else:
            trash = self.parent / f"{self.name}{TRASH}{_token()}"
            gone, _ = swap(fs, old, self.previous, trash, exchange=True, happened=lambda: False)
            fs.rmtree(gone)  # the former .previous
        fs.fsync_dir(self.parent)

    def __repr__(self) -> str:
        return f"Store({str(self.sandbox)!r}, {str(self.store)!r}, {list(self.paths)!r})"


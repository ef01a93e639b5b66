"""The layout and path policy: where the store, its staging and its leftovers live, and which
checkpoint paths are allowed.

``Layout`` checks the sandbox, the store path and the checkpoint paths once, at construction
(``ConfigError``), and holds the names every other part of the store derives from them::

    <store>                       the committed store
    <store>.staging-<c|m>-<token> a commit being built (c: copied, m: moved)
    <store>.old-<token>           the previous store, inside the two-rename swap
    <store>.trash-<token>         a ``.previous`` being replaced
    <store>.previous              the previous store, with --keep-previous
    <store>.corrupt-<UTC time>    a store moved aside by quarantine
    .<path>.ckpt-restore-<token>  a checkpoint path being restored
    .<path>.ckpt-trash-<token>    the working copy a restore replaced
"""

from __future__ import annotations

import functools
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError, StoreError
from .fs import FS, _describe, _lexists, log
from .manifest import RESERVED

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, TypeVar

STAGING_COPY = ".staging-c-"
STAGING_MOVE = ".staging-m-"
OLD = ".old-"
TRASH = ".trash-"
PREVIOUS = ".previous"
CORRUPT = ".corrupt-"
RESTORE_TMP = ".ckpt-restore-"
RESTORE_TRASH = ".ckpt-trash-"


def _components(rel: str) -> list[str]:
    return [c for c in rel.split("/") if c]


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _token() -> str:
    return f"{os.getpid()}-{os.urandom(4).hex()}"  # secrets.token_hex(4), without hmac/hashlib


def _utc_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _utc_iso() -> str:
    """``datetime.now(timezone.utc).isoformat(timespec="seconds")``, without datetime."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def _normalize(raw: object) -> str:
    """A checkpoint path as given by the user -> its normalized relative form, or ConfigError."""
    if not isinstance(raw, (str, os.PathLike)):
        raise ConfigError(f"checkpoint path {raw!r} is not a path")
    text = os.fspath(raw)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"checkpoint path {raw!r} is empty")
    if os.path.isabs(text):
        raise ConfigError(
            f"checkpoint path {text!r} is absolute; give it relative to the sandbox"
        )
    norm = os.path.normpath(text)
    parts = _components(norm)
    if norm in (".", "") or not parts:
        raise ConfigError(
            f"checkpoint path {text!r} names the sandbox itself; list the files or directories"
        )
    if parts[0] == "..":
        raise ConfigError(f"checkpoint path {text!r} leaves the sandbox")
    if parts[0] in RESERVED:
        raise ConfigError(
            f"checkpoint path {text!r} uses a name the store reserves "
            f"({', '.join(sorted(RESERVED))})"
        )
    return "/".join(parts)


if TYPE_CHECKING:
    _F = TypeVar("_F", bound=Callable[..., Any])


def _store_errors(what: str) -> Callable[[_F], _F]:
    """Turn an OSError escaping a public method into a one-line StoreError."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def inner(self: Layout, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except OSError as e:
                raise StoreError(
                    f"{what} failed: {_describe(e, self.store)}; {self._intact()}", cause=e
                ) from e

        return inner  # type: ignore[return-value]

    return wrap



class Layout:
    """The store's names and path policy, and the small file-system steps built on them."""

    def __init__(
        self,
        sandbox: Path,
        store: Path,
        paths: Sequence[str],
        *,
        fs: FS | None = None,
        retry_seconds: float = 10.0,
        keep_previous: bool = False,
    ) -> None:
        self.fs = fs if fs is not None else FS()
        if not os.path.isdir(sandbox):
            raise ConfigError(f"sandbox {sandbox} is not a directory")
        self.sandbox = Path(os.path.realpath(sandbox))
        store = Path(store)
        if not store.is_absolute():
            store = self.sandbox / store
        store = Path(os.path.abspath(store))
        if store.name in ("", ".", ".."):
            raise ConfigError(f"store path {store} must name a directory")
        self.store = Path(os.path.realpath(store.parent)) / store.name
        self.parent = self.store.parent
        self.name = self.store.name
        self.previous = self.parent / (self.name + PREVIOUS)
        if _is_within(self.sandbox, self.store):
            raise ConfigError(f"store {self.store} would contain the sandbox {self.sandbox}")
        if retry_seconds < 0:
            raise ConfigError(f"retry_seconds must be >= 0, not {retry_seconds}")
        self.retry_seconds = float(retry_seconds)
        self.keep_previous = keep_previous
        if isinstance(paths, (str, bytes)):
            raise ConfigError("checkpoint paths must be a list of paths, not one string")
        norm = [_normalize(p) for p in paths]
        if not norm:
            raise ConfigError("at least one checkpoint path is required")
        seen: dict[str, str] = {}
        for raw, n in zip(paths, norm):
            if n in seen:
                raise ConfigError(f"checkpoint path {raw!r} is listed twice (as {seen[n]!r})")
            seen[n] = str(raw)
        for a in norm:
            for b in norm:
                if a != b and b.startswith(a + "/"):
                    raise ConfigError(
                        f"checkpoint paths {a!r} and {b!r} overlap; list only {a!r}"
                    )
        for n in norm:
            full = self.sandbox / n
            if _is_within(full, self.store) or _is_within(self.store, full):
                raise ConfigError(
                    f"checkpoint path {n!r} overlaps the store {self.store}; choose another --store"
                )
        self.paths: tuple[str, ...] = tuple(norm)
        for n in self.paths:
            problem = self._symlink_problem(n)
            if problem:
                raise ConfigError(problem)
        self.extra_files: list[str] = []  # files verify() found that the manifest does not list
        self._exchange_ok = True

    # ---------------------------------------------------------------- small queries

    def _symlink_problem(self, rel: str) -> Optional[str]:
        """Why ``rel`` may not be used as a checkpoint path (a symlink on the way), or None."""
        here = self.sandbox
        for part in _components(rel):
            here = here / part
            st = _lexists(self.fs, here)
            if st is None:
                return None
            if stat.S_ISLNK(st.st_mode):
                target = Path(os.path.realpath(here))
                what = (
                    "is a symlink" if here == self.sandbox / rel else f"lies below symlink {here}"
                )
                if _is_within(target, self.sandbox):
                    return (
                        f"checkpoint path {rel!r} {what} to {target} inside the sandbox; "
                        f"list the real path instead"
                    )
                return (
                    f"checkpoint path {rel!r} {what} to {target} outside the sandbox; HTCondor "
                    f"would not transfer it: keep the checkpoint inside the sandbox"
                )
        return None


    def _makedirs(self, root: Path, rel: str) -> None:
        """Create the parent directories of ``rel`` below ``root`` (like mkdir -p)."""
        here = root
        for part in _components(rel)[:-1]:
            here = here / part
            if _lexists(self.fs, here) is None:
                self.fs.mkdir(here, 0o755)

    def _write_file(self, path: Path, data: bytes) -> None:
        fd = self.fs.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            self.fs.write(fd, data)
            self.fs.fsync(fd)
        finally:
            self.fs.close(fd)

    def _fsync_parents(self, root: Path, paths: Sequence[str]) -> None:
        """fsync the intermediate directories of nested paths (``out`` of ``out/ckpt.dat``)."""
        parents: set[str] = set()
        for rel in paths:
            parts = _components(rel)
            parents.update("/".join(parts[:i]) for i in range(1, len(parts)))
        for rel in sorted(parents, key=lambda r: -r.count("/")):
            self.fs.fsync_dir(root / rel)

    def _rm(self, path: Path) -> None:
        """Remove a file, symlink or whole tree."""
        if stat.S_ISDIR(self.fs.lstat(path).st_mode):
            self.fs.rmtree(path)
        else:
            self.fs.unlink(path)

    def _discard(self, path: Path) -> None:
        if _lexists(self.fs, path) is not None:
            try:
                self._rm(path)
            except OSError as e:
                log.warning("could not remove %s (%s); the next start will", path, e)

    def _intact(self) -> str:
        """The end of a failure message: what is still there. Never raises."""
        try:
            if _lexists(self.fs, self.store) is None and not self._old_dirs():
                return "nothing was committed (there was no previous checkpoint)"
        except OSError:
            pass
        return "the previous checkpoint is intact"

    def _old_dirs(self) -> list[str]:
        try:
            return [n for n in self.fs.listdir(self.parent) if n.startswith(self.name + OLD)]
        except OSError:
            return []

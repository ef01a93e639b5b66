"""The committed checkpoint store: atomic commit, manifest, verify, restore.

Theory of operation
===================
The store is one directory (by default ``checkpoint.atomic`` in the sandbox) that the user lists
in ``transfer_checkpoint_files``. Its layout is fixed, because HTCondor's SPOOL replaces files one
by one and never deletes a file that a later checkpoint left out::

    <store>/MANIFEST.json     format version, every entry with size and checksum, state digest
    <store>/state.json        the supervisor's small JSON state of this commit
    <store>/<path>...         each checkpoint path under its own relative name

A commit never touches the store in place. It builds a complete new store in a sibling staging
directory ``<store>.staging-<c|m>-<token>`` (same file system), fsyncs every file and directory
in it, writes ``MANIFEST.json`` last, fsyncs it and the staging directory, and only then swaps
the staging directory with the store: ``renameat2(RENAME_EXCHANGE)`` when the kernel and the
file system allow it (one atomic step), else two renames (store -> ``<store>.old-<token>``,
staging -> store) that ``cleanup_staging`` undoes at the next start if a crash fell between
them. After the swap the parent directory is fsynced and the old store is removed (or kept as
``<store>.previous``). At every instant the store path therefore names either the previous
complete store or the new complete one (or, only inside the fallback's two-rename window, no
store and a complete ``.old-`` one, which the next start renames back).

Files are staged with a reflink (``FICLONE``) when the file system shares extents (btrfs, XFS,
bcachefs: O(1)), else with a read/CRC/write loop that reads each byte once and starts writeback
as it goes (``FS.copy_checksum``); a restore copies with ``os.copy_file_range`` (in-kernel copy)
after verify() has read the store.
``commit(move=True)`` renames the working paths into staging instead (O(1) metadata), which is
only allowed once the program has exited; on any failure the moved paths are renamed back.
Nothing is ever hard-linked: the program may rewrite a file in place.

Checksums are CRC-32 (``zlib.crc32``) of the bytes written to the staged copy, taken from the
copy loop's buffer (a reflink: read from the clone; a moved file: read once, while the disk
writes its dirty pages). Measured on this project's development VM (x86_64 with SHA-NI, a 1 GiB
file in the page cache, 1 MiB reads):

    read only        ~1.4-1.5 GiB/s
    zlib.crc32       ~2.2-2.5 GiB/s hashing (in memory), read + crc32 0.41 s/GiB
    hashlib.sha256   ~1.3-1.5 GiB/s hashing (SHA-NI; ~0.4 GiB/s without it), read + sha256 0.8 s/GiB
    hashlib.blake2b  ~0.6 GiB/s hashing, read + blake2b 1.6 s/GiB
    cp (no fsync)    1.7-4.6 s/GiB; copy_file_range 1.1 s/GiB + fsync 0.5 s/GiB

The copy of before (copy_file_range, then the staged copy read back for its CRC) ran at
0.65x the speed of ``cp -r`` + fsync; the read/CRC/write loop with a 256 KiB buffer and early
writeback at 1.0x (bench/commit_ratio.py, docs/performance.md). Figures and method:
docs/explanation/store.md.

CRC-32 adds the least to a commit (about 0.4 s/GiB on top of the copy) and detects what the store
must detect: accidental damage (truncation, a partial SPOOL transfer, flipped bits; every burst
up to 32 bits, anything else with probability 1 - 2**-32, and sizes are checked too). It is not
a defence against a deliberate forger, which is not a threat here. ``state.json`` is tiny and
decides whether a job is finished, so it gets a SHA-256 digest.

Symlinks: a checkpoint path that is itself a symlink, or lies below a symlinked directory, is
refused (ConfigError at construction when it already exists, StoreError at commit): HTCondor
would not transfer a target outside the sandbox, and a link inside it should be listed by its
real path. Symlinks *inside* a checkpoint directory are stored as symlinks (their target text),
never followed. Other special files (FIFOs, sockets, devices) inside a directory are skipped with
a warning. Hard links inside a directory become independent copies.

A copy is not a snapshot: a program may rewrite its files while they are copied. ``commit(expect=
fingerprint)`` commits only the state the completion rules approved: the working paths must
have that fingerprint before the copy and still after it (else ``CheckpointChanged``, nothing
committed); the supervisor also holds the program still for the copy (supervisor/freeze.py) and
continues it through ``on_staged``.

Every file-system call that can fail goes through an ``FS`` object, so tests fail each step in
turn. See docs/explanation/store.md for the protocol, step by step, and what a crash at each step
leaves behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import stat
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, cast

from .errors import CheckpointPathMissing, ConfigError, CorruptStore, StoreError
from .records import record

# The supervisor imports this module at every start with --checkpoint, and then idles for hours:
# what it does not need until a commit or a warning is imported there, not here (hashlib with
# OpenSSL's libcrypto, secrets, logging, dataclasses, datetime, shutil, json: ~7 MB of RSS).


class _LazyLogger:
    """``logging.getLogger(__name__)``, imported at the first message (logging costs ~1 MB)."""

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger(__name__), name)


log: Any = _LazyLogger()


@functools.cache
def _sha256_type() -> Any:
    """CPython's built-in SHA-256 (``_sha2`` from 3.12, ``_sha256`` before), else hashlib's.

    The digests are the same; hashlib would map OpenSSL's libcrypto (3.5 MB of RSS) for the few
    small digests the store takes (state.json, content_id).
    """
    import importlib

    for name in ("_sha2", "_sha256"):
        try:
            return importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
    import hashlib  # pragma: no cover - a build without the built-in hashes

    return hashlib.sha256  # pragma: no cover


def _sha256_hex(data: bytes) -> str:
    return str(_sha256_type()(data).hexdigest())

MANIFEST = "MANIFEST.json"
STATE = "state.json"
RESERVED = frozenset({MANIFEST, STATE})
FORMAT = "checkpoint-supervisor-store"
VERSION = 1
CHECKSUM = "crc32"

STAGING_COPY = ".staging-c-"
STAGING_MOVE = ".staging-m-"
OLD = ".old-"
TRASH = ".trash-"
PREVIOUS = ".previous"
CORRUPT = ".corrupt-"
RESTORE_TMP = ".ckpt-restore-"
RESTORE_TRASH = ".ckpt-trash-"

CHUNK = 1 << 20
# The copy loop's buffer: small enough to stay in the CPU cache between the CRC and the write
# (measured faster than 1 MiB and than 4 MiB), and writeback is started every WRITEBACK_EVERY.
COPY_CHUNK = 256 << 10
WRITEBACK_EVERY = 2 << 20
TRANSIENT = frozenset({errno.EINTR, errno.EAGAIN, errno.EBUSY})
# errno values that mean "this file system cannot do that": fall back to the next method.
_UNSUPPORTED = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS}
)

FICLONE = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# renameat2 syscall numbers, for a libc older than glibc 2.28 that lacks the wrapper.
_SYS_RENAMEAT2 = {
    "x86_64": 316,
    "aarch64": 276,
    "riscv64": 276,
    "ppc64le": 357,
    "ppc64": 357,
    "s390x": 347,
    "i686": 353,
    "i386": 353,
    "armv7l": 382,
}


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


# --------------------------------------------------------------------------------------------
# The file-system seam
# --------------------------------------------------------------------------------------------

_RenameFn = Callable[[bytes, bytes], int]


@functools.cache
def _load_renameat2() -> Optional[_RenameFn]:
    """A callable doing renameat2(RENAME_EXCHANGE), or None when this platform has no way to."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - static binaries only
        return None
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int

        def exchange(a: bytes, b: bytes) -> int:
            return int(fn(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE))

        return exchange
    nr = _SYS_RENAMEAT2.get(os.uname().machine)  # pragma: no cover - old libc only
    if nr is None:  # pragma: no cover
        return None
    syscall = libc.syscall  # pragma: no cover
    syscall.restype = ctypes.c_long  # pragma: no cover

    def exchange_syscall(a: bytes, b: bytes) -> int:  # pragma: no cover
        return int(
            syscall(
                ctypes.c_long(nr),
                ctypes.c_int(_AT_FDCWD),
                ctypes.c_char_p(a),
                ctypes.c_int(_AT_FDCWD),
                ctypes.c_char_p(b),
                ctypes.c_uint(_RENAME_EXCHANGE),
            )
        )

    return exchange_syscall  # pragma: no cover


class FS:
    """Every file-system call the store makes that can fail.

    Tests wrap or subclass it to make any single step fail. Paths are ``os.PathLike`` or str.
    """

    # --- metadata and directories
    def lstat(self, path: Path) -> os.stat_result:
        return os.lstat(path)

    def fstat(self, fd: int) -> os.stat_result:
        return os.fstat(fd)

    def listdir(self, path: Path) -> list[str]:
        return os.listdir(path)

    def mkdir(self, path: Path, mode: int = 0o755) -> None:
        os.mkdir(path, mode)

    def chmod(self, path: Path, mode: int) -> None:
        os.chmod(path, mode)

    def readlink(self, path: Path) -> str:
        return os.readlink(path)

    def symlink(self, target: str, path: Path) -> None:
        os.symlink(target, path)

    # --- files
    def open(self, path: Path, flags: int, mode: int = 0o600) -> int:
        return os.open(path, flags | os.O_CLOEXEC, mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def read_at(self, fd: int, buf: memoryview, offset: int) -> int:
        return os.preadv(fd, [buf], offset)

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def copy(self, src_fd: int, dst_fd: int) -> str:
        """Copy all of ``src_fd`` into the empty ``dst_fd``: "reflink" or "copy"."""
        try:
            fcntl.ioctl(dst_fd, FICLONE, src_fd)
            return "reflink"
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
        try:
            while os.copy_file_range(src_fd, dst_fd, 1 << 30):
                pass
            return "copy"
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
        # The shutil-style fallback: a plain read/write loop from the start.
        os.lseek(src_fd, 0, os.SEEK_SET)
        os.lseek(dst_fd, 0, os.SEEK_SET)
        os.ftruncate(dst_fd, 0)
        while True:
            block = os.read(src_fd, CHUNK)
            if not block:
                return "copy"
            self.write(dst_fd, block)

    def copy_checksum(self, src_fd: int, dst_fd: int) -> tuple[str, int, int]:
        """Copy all of ``src_fd`` into the empty ``dst_fd``, reading each byte once.

        Returns (method, bytes, CRC-32 of the bytes now in ``dst_fd``). A reflink shares the
        extents without reading, so the CRC is read from the clone (a snapshot: a program that
        keeps writing its file cannot make the two differ). Otherwise a read/CRC/write loop over
        one small buffer: the CRC is of exactly the bytes written, and the buffer is still in the
        CPU cache when it is hashed and written. Writeback of what is written is started as the
        copy goes (``sync_file_range``), so the final fsync finds little left to do.
        """
        try:
            fcntl.ioctl(dst_fd, FICLONE, src_fd)
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
        else:
            size, crc = checksum_fd(self, dst_fd)
            return "reflink", size, crc
        start_writeback = _writeback_starter()
        buf = bytearray(COPY_CHUNK)
        view = memoryview(buf)
        crc = offset = kicked = 0
        while True:
            n = os.readv(src_fd, [view])
            if n == 0:
                return "copy", offset, crc
            block = view[:n]
            crc = zlib.crc32(block, crc)
            while block:
                block = block[os.write(dst_fd, block):]
            offset += n
            if start_writeback is not None and offset - kicked >= WRITEBACK_EVERY:
                start_writeback(dst_fd, kicked, offset - kicked)
                kicked = offset

    def fchmod(self, fd: int, mode: int) -> None:
        os.fchmod(fd, mode)

    def futimes(self, fd: int, ns: tuple[int, int]) -> None:
        os.utime(fd, ns=ns)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- names
    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def exchange(self, a: Path, b: Path) -> None:
        """Atomically swap two names (renameat2 RENAME_EXCHANGE); OSError(ENOSYS) if impossible."""
        renameat2 = _load_renameat2()
        if renameat2 is None:
            raise OSError(errno.ENOSYS, "renameat2 is not available", str(a))
        if renameat2(os.fsencode(a), os.fsencode(b)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(a), None, str(b))

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def rmtree(self, path: Path) -> None:
        import shutil

        shutil.rmtree(path)


def checksum_fd(fs: FS, fd: int) -> tuple[int, int]:
    """(bytes read, crc32) of the whole open file."""
    crc = 0
    offset = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        n = fs.read_at(fd, view, offset)
        if n == 0:
            return offset, crc
        crc = zlib.crc32(view[:n], crc)
        offset += n


_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _writeback_starter() -> Optional[Callable[[int, int, int], None]]:
    """``sync_file_range(fd, offset, n, SYNC_FILE_RANGE_WRITE)`` (Linux), or None.

    It only starts writeback of dirty pages and returns; it is a hint (fsync still decides
    durability), so its errors are ignored.
    """
    if os.uname().sysname != "Linux":
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int

    def start(fd: int, offset: int, n: int) -> None:
        fn(fd, offset, n, _SYNC_FILE_RANGE_WRITE)

    return start


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _errname(e: OSError) -> str:
    return errno.errorcode.get(e.errno or 0, f"errno {e.errno}")


def _describe(e: OSError, path: object) -> str:
    where = e.filename if e.filename is not None else path
    return f"{_errname(e)} ({e.strerror or e}) on {where}"


def _is_transient(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in TRANSIENT


def _lexists(fs: FS, path: Path) -> Optional[os.stat_result]:
    try:
        return fs.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


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


def checkpoint_bytes(sandbox: Path | str, paths: Sequence[str]) -> int:
    """Total size of the regular files under the checkpoint ``paths`` (missing paths count 0)."""
    total = 0
    root = Path(sandbox)
    for rel in paths:
        stack = [root / rel]
        while stack:
            p = stack.pop()
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
            elif stat.S_ISDIR(st.st_mode):
                with contextlib.suppress(OSError):
                    stack.extend(p / n for n in os.listdir(p))
    return total


_F = TypeVar("_F", bound=Callable[..., Any])


def _store_errors(what: str) -> Callable[[_F], _F]:
    """Turn an OSError escaping a public method into a one-line StoreError."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def inner(self: Store, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except OSError as e:
                raise StoreError(
                    f"{what} failed: {_describe(e, self.store)}; {self._intact()}", cause=e
                ) from e

        return cast(_F, inner)

    return wrap


@record
class _Staged:
    entries: list[dict[str, Any]]
    bytes: int = 0
    files: int = 0
    method: str = "rename"

    def used(self, method: str) -> None:
        order = ("rename", "reflink", "copy")
        if order.index(method) > order.index(self.method):
            self.method = method


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class Store:
    """The committed copy of a program's checkpoint paths. See the module docstring."""

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

    @_store_errors("looking for the store")
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

    def fingerprint(self) -> tuple[tuple[Any, ...], ...]:
        """A cheap, hashable fingerprint of the working checkpoint paths.

        One tuple per file, directory and symlink under each path, in a stable order:
        ``(relpath, kind, size, mtime_ns, ino, ctime_ns)``; a missing path gives
        ``(relpath, "missing")``. Promise: any write, truncation, creation, deletion or
        replacement by rename changes it (ctime_ns and ino catch writes that restore mtime).
        Equal fingerprints mean "nothing changed", not more: restore() writes new inodes, so the
        fingerprint after a restore differs from the one taken before the commit; take a new
        baseline after restoring.
        """
        out: list[tuple[Any, ...]] = []
        for rel in self.paths:
            self._fingerprint_walk(rel, out)
        return tuple(out)

    def _fingerprint_walk(self, rel: str, out: list[tuple[Any, ...]]) -> None:
        path = self.sandbox / rel
        try:
            st = self.fs.lstat(path)
        except OSError:
            out.append((rel, "missing"))
            return
        mode = st.st_mode
        kind = ("d" if stat.S_ISDIR(mode) else "l" if stat.S_ISLNK(mode) else "f" if stat.S_ISREG(mode)
                else "s")  # "s": a FIFO, socket or device
        out.append((rel, kind, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
        if kind == "d":
            try:
                names = sorted(self.fs.listdir(path))
            except OSError:
                return
            for name in names:
                self._fingerprint_walk(f"{rel}/{name}", out)

    # ---------------------------------------------------------------- manifest and state

    def _read_small(self, path: Path, limit: int = 64 << 20) -> bytes:
        fd = self.fs.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            chunks = []
            total = 0
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while True:
                n = self.fs.read_at(fd, view, total)
                if n == 0:
                    break
                chunks.append(bytes(view[:n]))
                total += n
                if total > limit:
                    raise CorruptStore(f"{path} is larger than {limit} bytes; not a store file")
            return b"".join(chunks)
        finally:
            self.fs.close(fd)

    def _load_manifest(self, root: Optional[Path] = None) -> dict[str, Any]:
        root = self.store if root is None else root
        st = _lexists(self.fs, root)
        if st is None:
            raise StoreError(f"no committed store at {root}")
        if not stat.S_ISDIR(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a regular file" if stat.S_ISREG(
                st.st_mode
            ) else "not a directory"
            raise CorruptStore(f"store {root} is {kind}, not a store directory")
        try:
            raw = self._read_small(root / MANIFEST)
        except FileNotFoundError:
            raise CorruptStore(
                f"store {root} has no {MANIFEST} (incomplete or not a store)"
            ) from None
        except OSError as e:  # an I/O error is not proof of damage: do not quarantine for it
            raise StoreError(f"cannot read {root / MANIFEST}: {_describe(e, root)}", cause=e) from e
        try:
            import json

            man = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CorruptStore(f"{root / MANIFEST} is not valid JSON ({e})", cause=e) from e
        if not isinstance(man, dict) or man.get("format") != FORMAT:
            raise CorruptStore(f"{root / MANIFEST} is not a checkpoint-supervisor manifest")
        if man.get("version") != VERSION:
            raise CorruptStore(
                f"{root / MANIFEST} has format version {man.get('version')!r}; this supervisor "
                f"reads version {VERSION}"
            )
        if man.get("checksum") != CHECKSUM:
            raise CorruptStore(f"{root / MANIFEST} uses checksum {man.get('checksum')!r}")
        paths, entries, state = man.get("paths"), man.get("entries"), man.get("state")
        if not (
            isinstance(paths, list) and isinstance(entries, list) and isinstance(state, dict)
        ):
            raise CorruptStore(f"{root / MANIFEST} lacks its paths, entries or state fields")
        for p in paths:
            if not isinstance(p, str) or self._unsafe(p):
                raise CorruptStore(f"{root / MANIFEST} lists an unsafe path {p!r}")
        tops = set(paths)
        for ent in entries:
            if not isinstance(ent, dict) or not isinstance(ent.get("path"), str):
                raise CorruptStore(f"{root / MANIFEST} has a malformed entry {ent!r}")
            rel = ent["path"]
            if self._unsafe(rel) or not any(rel == t or rel.startswith(t + "/") for t in tops):
                raise CorruptStore(f"{root / MANIFEST} lists an unsafe path {rel!r}")
            kind = str(ent.get("type"))
            ints = {"file": ("size", "mode", "mtime_ns"), "dir": ("mode",), "symlink": ()}
            strs = {"file": (CHECKSUM,), "dir": (), "symlink": ("target",)}
            ok = kind in ints and all(
                isinstance(ent.get(k), int) and not isinstance(ent.get(k), bool)
                for k in ints[kind]
            ) and all(isinstance(ent.get(k), str) for k in strs[kind])
            if not ok:
                raise CorruptStore(f"{root / MANIFEST} has a malformed entry for {rel!r}")
        return man

    @staticmethod
    def _unsafe(rel: str) -> bool:
        parts = rel.split("/")
        return (
            not rel
            or rel.startswith("/")
            or any(p in ("", ".", "..") for p in parts)
            or parts[0] in RESERVED
        )

    def _load_state(self, man: dict[str, Any], root: Optional[Path] = None) -> dict[str, Any]:
        root = self.store if root is None else root
        want = man["state"]
        try:
            raw = self._read_small(root / STATE)
        except FileNotFoundError:
            raise CorruptStore(f"store {root} has no {STATE}") from None
        except OSError as e:
            raise StoreError(f"cannot read {root / STATE}: {_describe(e, root)}", cause=e) from e
        if len(raw) != want.get("size") or _sha256_hex(raw) != want.get("sha256"):
            raise CorruptStore(f"{root / STATE} does not match the manifest's digest")
        import json

        try:
            state = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:  # pragma: no cover - digest matched
            raise CorruptStore(f"{root / STATE} is not valid JSON ({e})", cause=e) from e
        if not isinstance(state, dict):
            raise CorruptStore(f"{root / STATE} does not hold a JSON object")
        return state

    @_store_errors("reading the store's state")
    def read_state(self) -> dict[str, Any] | None:
        """The state saved with the last commit (its digest is checked); None when no store."""
        if _lexists(self.fs, self.store) is None:
            return None
        man = self._load_manifest()
        return self._load_state(man)

    def _checksum_fd(self, fd: int) -> tuple[int, int]:
        """(bytes read, crc32) of the whole open file."""
        return checksum_fd(self.fs, fd)

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
                        size, crc = self._checksum_fd(fd)
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

    # ---------------------------------------------------------------- staging

    def _stage_file(self, src: Path, dst: Path, rel: str, staged: _Staged) -> None:
        fs = self.fs
        sfd = fs.open(src, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            st = fs.fstat(sfd)
            dfd = fs.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                method, size, crc = fs.copy_checksum(sfd, dfd)
                staged.used(method)
                fs.fchmod(dfd, stat.S_IMODE(st.st_mode))
                fs.futimes(dfd, (st.st_atime_ns, st.st_mtime_ns))
                fs.fsync(dfd)
            finally:
                fs.close(dfd)
        finally:
            fs.close(sfd)
        staged.entries.append(
            {"path": rel, "type": "file", "size": size, CHECKSUM: f"{crc:08x}",
             "mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns}
        )
        staged.bytes += size
        staged.files += 1

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
                size, crc = self._checksum_fd(fd)
                fs.fsync(fd)
            finally:
                fs.close(fd)
            staged.entries.append(
                {"path": rel, "type": "file", "size": size, CHECKSUM: f"{crc:08x}",
                 "mode": stat.S_IMODE(mode), "mtime_ns": st.st_mtime_ns}
            )
            staged.bytes += size
            staged.files += 1
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
                sfd = fs.open(src, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    dfd = fs.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    try:
                        staged.used(fs.copy(sfd, dfd))
                        if fs.fstat(dfd).st_size != ent["size"]:
                            raise CorruptStore(
                                f"{rel!r} in store {self.store} does not have its recorded size"
                            )
                        fs.fchmod(dfd, ent["mode"])
                        fs.futimes(dfd, (ent["mtime_ns"], ent["mtime_ns"]))
                        fs.fsync(dfd)
                    finally:
                        fs.close(dfd)
                finally:
                    fs.close(sfd)
                staged.bytes += ent["size"]
                staged.files += 1
            staged.entries.append(dict(ent))
        for d, mode in reversed(dirs):
            fs.chmod(d, mode)
            fs.fsync_dir(d)
        return staged

    # ---------------------------------------------------------------- commit

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
        payload = self._encode_state(state)

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

    def content_id(self) -> str:
        """A digest of the committed files' names, types, sizes, checksums and link targets.

        Two stores with the same content_id hold the same bytes (times and modes aside).
        """
        man = self._load_manifest()
        keys = sorted(
            (e["path"], e["type"], e.get("size", 0), e.get(CHECKSUM, ""), e.get("target", ""))
            for e in man["entries"]
        )
        import json

        return _sha256_hex(json.dumps(keys).encode())[:32]

    @_store_errors("checkpoint commit")
    def commit_state(self, state: dict[str, Any]) -> CommitResult:
        """Commit the files of the current store again with a new ``state`` (same atomicity).

        Without a store, commits a store that holds only the state (no checkpoint paths).
        """
        payload = self._encode_state(state)
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

    @staticmethod
    def _encode_state(state: dict[str, Any]) -> bytes:
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, not {type(state).__name__}")
        import json

        return (json.dumps(state, sort_keys=True, indent=1) + "\n").encode("utf-8")

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
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "checksum": CHECKSUM,
                "commit": token,
                "created": _utc_iso(),
                "paths": list(paths),
                "state": {"file": STATE, "size": len(payload),
                          "sha256": _sha256_hex(payload)},
                "bytes": staged.bytes,
                "files": staged.files,
                "entries": staged.entries,
            }
            import json

            self._write_file(staging / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
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
        if self._exchange_ok:
            try:
                fs.exchange(staging, self.store)
                return staging
            except OSError as e:
                if e.errno not in _UNSUPPORTED:
                    if self._is_ours(token):
                        return staging
                    raise
                log.info("renameat2(RENAME_EXCHANGE) unavailable here (%s); using two renames",
                         _errname(e))
                self._exchange_ok = False
        old = self.parent / f"{self.name}{OLD}{token}"
        try:
            fs.rename(self.store, old)
        except OSError:
            if _lexists(fs, self.store) is not None or _lexists(fs, old) is None:
                raise
        try:
            fs.rename(staging, self.store)
        except BaseException:
            if self._is_ours(token):
                return old
            try:
                fs.rename(old, self.store)
            except OSError as e2:
                log.error("could not put the old store back (%s); the next start will", e2)
            raise
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
            try:
                fs.exchange(old, self.previous)
            except OSError as e:
                if e.errno not in _UNSUPPORTED:
                    raise
                trash = self.parent / f"{self.name}{TRASH}{_token()}"
                fs.rename(self.previous, trash)
                fs.rename(old, self.previous)
                old = trash
            fs.rmtree(old)
        fs.fsync_dir(self.parent)

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
                    sfd = fs.open(src, os.O_RDONLY | os.O_NOFOLLOW)
                    try:
                        dfd = fs.open(
                            target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
                        )
                        try:
                            fs.copy(sfd, dfd)
                            if fs.fstat(dfd).st_size != ent["size"]:
                                raise CorruptStore(
                                    f"{rel!r} in store {self.store} does not have its recorded size"
                                )
                            fs.fchmod(dfd, ent["mode"])
                            fs.futimes(dfd, (ent["mtime_ns"], ent["mtime_ns"]))
                            fs.fsync(dfd)
                        finally:
                            fs.close(dfd)
                    finally:
                        fs.close(sfd)
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
        if self._exchange_ok:
            try:
                fs.exchange(tmp, dst)
            except OSError as e:
                if e.errno not in _UNSUPPORTED:
                    raise
                self._exchange_ok = False
            else:
                self._discard(tmp)  # now the old working tree
                return
        trash = dst.parent / f".{dst.name}{RESTORE_TRASH}{_token()}"
        try:
            fs.rename(dst, trash)
        except OSError:
            if _lexists(fs, dst) is not None or _lexists(fs, trash) is None:
                raise  # it did not happen
        try:
            fs.rename(tmp, dst)
        except BaseException:
            if _lexists(fs, tmp) is None and _lexists(fs, dst) is not None:
                self._discard(trash)  # it happened after all
                return
            with contextlib.suppress(OSError):
                fs.rename(trash, dst)
            raise
        self._discard(trash)

    def _discard(self, path: Path) -> None:
        if _lexists(self.fs, path) is not None:
            try:
                self._rm(path)
            except OSError as e:
                log.warning("could not remove %s (%s); the next start will", path, e)

    def __repr__(self) -> str:
        return f"Store({str(self.sandbox)!r}, {str(self.store)!r}, {list(self.paths)!r})"


def iter_fs_methods() -> Iterator[str]:
    """Names of the FS methods (for tests that wrap every one of them)."""
    for name in dir(FS):
        if not name.startswith("_") and callable(getattr(FS, name)):
            yield name

"""The file-system seam: every call the store makes that can fail goes through an ``FS`` object.

Tests subclass ``FS`` (or wrap each of its methods, ``iter_fs_methods``) to make any single step
fail. Above the seam, two functions do what the store used to repeat: ``copy_entry`` (open,
copy, fchmod, futimes, fsync of one file) and ``swap`` (put a new tree at a name, by
``renameat2(RENAME_EXCHANGE)`` or by two renames with their undo).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import CorruptStore

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Callable, Optional


class _LazyLogger:
    """``logging.getLogger("supervisor.store")``, imported at the first message (logging costs
    ~1 MB)."""

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("supervisor.store"), name)


log: Any = _LazyLogger()

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




# The file-system seam
# --------------------------------------------------------------------------------------------

if TYPE_CHECKING:
    _RenameFn = Callable[[bytes, bytes], int]


@functools.cache
def _load_renameat2() -> Optional[_RenameFn]:
    """A callable doing renameat2(RENAME_EXCHANGE), or None when this platform has no way to."""
    import ctypes  # here, not at import: the store is imported at every start with --checkpoint

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
            import ctypes

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
    import ctypes

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



# --------------------------------------------------------------------------------------------
# The two steps the store repeats, built on the seam
# --------------------------------------------------------------------------------------------


def copy_entry(
    fs: FS,
    src: Path,
    dst: Path,
    *,
    mode: Optional[int] = None,
    mtime_ns: int = 0,
    size: int = 0,
    mismatch: str = "",
) -> tuple[str, int, int, os.stat_result | None]:
    """Copy the regular file ``src`` to the new name ``dst`` and make it durable.

    Open both (``O_NOFOLLOW``; ``dst`` is created exclusively, 0600), copy, set the mode and
    times, fsync. Returns (method, bytes, crc32, stat of ``src``).

    ``mode=None``: a working file. It is copied with ``fs.copy_checksum`` (each byte read once,
    the CRC-32 of what was written); its mode and times are taken from ``src`` (whose stat is
    returned). Else a committed entry with its recorded ``mode``, ``mtime_ns`` and ``size``:
    copied with ``fs.copy`` (reflink or in-kernel copy; its crc32 is returned as 0, the manifest
    keeps the recorded one), and a copy of another size raises ``CorruptStore(mismatch)``.
    """
    sfd = fs.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = fs.fstat(sfd) if mode is None else None
        flags = os.O_RDWR if st is not None else os.O_WRONLY  # copy_checksum reads a reflink back
        dfd = fs.open(dst, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            if st is not None:
                method, n, crc = fs.copy_checksum(sfd, dfd)
                mode, times = st.st_mode & 0o7777, (st.st_atime_ns, st.st_mtime_ns)
            else:
                assert mode is not None
                method, crc, times = fs.copy(sfd, dfd), 0, (mtime_ns, mtime_ns)
                n = fs.fstat(dfd).st_size
                if n != size:
                    raise CorruptStore(mismatch)
            fs.fchmod(dfd, mode)
            fs.futimes(dfd, times)
            fs.fsync(dfd)
        finally:
            fs.close(dfd)
    finally:
        fs.close(sfd)
    return method, n, crc, st


def swap(
    fs: FS, new: Path, dst: Path, aside: Path, *, exchange: bool, happened: Callable[[], bool]
) -> tuple[Path, bool]:
    """Put the tree ``new`` at the existing name ``dst``; return (where the old tree is, whether
    ``exchange`` still works here).

    ``renameat2(RENAME_EXCHANGE)`` when ``exchange`` is true and the file system allows it (one
    atomic step: the old tree ends at ``new``), else two renames: ``dst`` -> ``aside``, ``new``
    -> ``dst`` (the old tree ends at ``aside``; if the second fails, the first is undone). A
    rename that reports an error may still have happened (NFS retransmits, or an error reported
    after the fact): before giving up, ``happened()`` says whether ``new`` is at ``dst`` already.
    """
    if exchange:
        try:
            fs.exchange(new, dst)
            return new, True
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                if happened():
                    return new, True
                raise
            exchange = False
    try:
        fs.rename(dst, aside)
    except OSError:
        if _lexists(fs, dst) is not None or _lexists(fs, aside) is None:
            raise  # it did not happen
    try:
        fs.rename(new, dst)
    except BaseException:
        if happened():
            return aside, exchange
        try:
            fs.rename(aside, dst)
        except OSError as e2:
            log.error("could not put %s back at %s (%s); the next start will", aside, dst, e2)
        raise
    return aside, exchange


def iter_fs_methods() -> Iterator[str]:
    """Names of the FS methods (for tests that wrap every one of them)."""
    for name in dir(FS):
        if not name.startswith("_") and callable(getattr(FS, name)):
            yield name

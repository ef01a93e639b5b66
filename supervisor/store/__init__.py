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

Where the code lives: ``fs`` (the seam, ``copy_entry``, ``swap``), ``layout`` (names and path
policy), ``manifest`` (the schema), ``fingerprint`` (the working tree), ``staging``, ``repair``
and ``protocol`` (``Store``: commit, verify, restore). See docs/explanation/store.md for the
protocol, step by step, and what a crash at each step leaves behind.
"""

from __future__ import annotations

from .fingerprint import checkpoint_bytes, fingerprint
from .fs import (
    CHUNK,
    COPY_CHUNK,
    FICLONE,
    FS,
    TRANSIENT,
    WRITEBACK_EVERY,
    checksum_fd,
    copy_entry,
    iter_fs_methods,
    log,
    swap,
)
from .layout import (
    CORRUPT,
    OLD,
    PREVIOUS,
    RESTORE_TMP,
    RESTORE_TRASH,
    STAGING_COPY,
    STAGING_MOVE,
    TRASH,
    Layout,
)
from .manifest import CHECKSUM, FORMAT, MANIFEST, RESERVED, STATE, VERSION
from .protocol import CheckpointChanged, CommitResult, EmptyCheckpoint, RestoreResult, Store

__all__ = [
    "CHECKSUM", "CHUNK", "COPY_CHUNK", "CORRUPT", "FICLONE", "FORMAT", "FS", "MANIFEST", "OLD",
    "PREVIOUS", "RESERVED", "RESTORE_TMP", "RESTORE_TRASH", "STAGING_COPY", "STAGING_MOVE",
    "STATE", "TRANSIENT", "TRASH", "VERSION", "WRITEBACK_EVERY", "CheckpointChanged",
    "CommitResult", "EmptyCheckpoint", "Layout", "RestoreResult", "Store", "checkpoint_bytes",
    "checksum_fd", "copy_entry", "fingerprint", "iter_fs_methods", "log", "swap",
]

"""The manifest schema: ``MANIFEST.json`` and ``state.json``, how they are written and read.

A store holds ``MANIFEST.json`` (format, version, every entry with its size and CRC-32, the
digest of the state) and ``state.json`` (the supervisor's small JSON state). Reading either
checks the schema; anything that does not fit raises ``CorruptStore`` with a one-line reason,
an I/O error raises ``StoreError`` (it is not proof of damage).
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from ..errors import CorruptStore, StoreError
from ..records import record
from .fs import CHUNK, FS, _describe, _lexists

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


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


@record
class _Staged:
    """The entries of a store being built, and what building them cost."""

    entries: list[dict[str, Any]]
    bytes: int = 0
    files: int = 0
    method: str = "rename"

    def used(self, method: str) -> None:
        order = ("rename", "reflink", "copy")
        if order.index(method) > order.index(self.method):
            self.method = method

    def add_file(self, rel: str, size: int, crc: int, mode: int, mtime_ns: int) -> None:
        self.entries.append(
            {"path": rel, "type": "file", "size": size, CHECKSUM: f"{crc:08x}",
             "mode": stat.S_IMODE(mode), "mtime_ns": mtime_ns}
        )
        self.bytes += size
        self.files += 1


def encode_state(state: dict[str, Any]) -> bytes:
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, not {type(state).__name__}")
    import json

    return (json.dumps(state, sort_keys=True, indent=1) + "\n").encode("utf-8")


def encode_manifest(
    token: str, created: str, paths: Sequence[str], payload: bytes, staged: _Staged
) -> bytes:
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "checksum": CHECKSUM,
        "commit": token,
        "created": created,
        "paths": list(paths),
        "state": {"file": STATE, "size": len(payload),
                  "sha256": _sha256_hex(payload)},
        "bytes": staged.bytes,
        "files": staged.files,
        "entries": staged.entries,
    }
    import json

    return (json.dumps(manifest, indent=1) + "\n").encode()


def content_id(man: dict[str, Any]) -> str:
    """A digest of the entries' names, types, sizes, checksums and link targets."""
    keys = sorted(
        (e["path"], e["type"], e.get("size", 0), e.get(CHECKSUM, ""), e.get("target", ""))
        for e in man["entries"]
    )
    import json

    return _sha256_hex(json.dumps(keys).encode())[:32]


def read_small(fs: FS, path: Path, limit: int = 64 << 20) -> bytes:
    fd = fs.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        chunks = []
        total = 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = fs.read_at(fd, view, total)
            if n == 0:
                break
            chunks.append(bytes(view[:n]))
            total += n
            if total > limit:
                raise CorruptStore(f"{path} is larger than {limit} bytes; not a store file")
        return b"".join(chunks)
    finally:
        fs.close(fd)


def load_manifest(fs: FS, root: Path) -> dict[str, Any]:
    st = _lexists(fs, root)
    if st is None:
        raise StoreError(f"no committed store at {root}")
    if not stat.S_ISDIR(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a regular file" if stat.S_ISREG(
            st.st_mode
        ) else "not a directory"
        raise CorruptStore(f"store {root} is {kind}, not a store directory")
    try:
        raw = read_small(fs, root / MANIFEST)
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
        if not isinstance(p, str) or unsafe(p):
            raise CorruptStore(f"{root / MANIFEST} lists an unsafe path {p!r}")
    tops = set(paths)
    for ent in entries:
        if not isinstance(ent, dict) or not isinstance(ent.get("path"), str):
            raise CorruptStore(f"{root / MANIFEST} has a malformed entry {ent!r}")
        rel = ent["path"]
        if unsafe(rel) or not any(rel == t or rel.startswith(t + "/") for t in tops):
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


def unsafe(rel: str) -> bool:
    parts = rel.split("/")
    return (
        not rel
        or rel.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or parts[0] in RESERVED
    )


def load_state(fs: FS, man: dict[str, Any], root: Path) -> dict[str, Any]:
    want = man["state"]
    try:
        raw = read_small(fs, root / STATE)
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

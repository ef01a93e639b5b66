"""The committed checkpoint store: round trip, fingerprint, corruption, layout, policy.

Fault injection, kills and full or read-only file systems are in test_store_faults.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.errors import CheckpointPathMissing, ConfigError, CorruptStore, StoreError
from supervisor.store import FS, MANIFEST, STATE, Store, checkpoint_bytes

ROOT = Path(__file__).resolve().parents[2]
PATHS = ["a.bin", "b.bin", "dir"]
STORE = Path("checkpoint.atomic")


def write_checkpoint(sandbox: Path, seq: int, size: int = 4096) -> None:
    """Checkpoint files whose every byte derives from ``seq`` (so a mix is detectable)."""
    for i, name in enumerate(["a.bin", "b.bin", "dir/c.bin", "dir/sub/d.bin"]):
        p = sandbox / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"seq={seq} file={i}\n".encode() + bytes([seq % 251]) * size)


def store_seqs(root: Path) -> set[int]:
    """The seq numbers carried by the checkpoint files below ``root``."""
    seqs = set()
    for name in ["a.bin", "b.bin", "dir/c.bin", "dir/sub/d.bin"]:
        head = (root / name).read_bytes().split(b"\n", 1)[0].decode()
        seqs.add(int(head.split()[0].split("=")[1]))
    return seqs


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    sb = tmp_path / "sandbox"
    sb.mkdir()
    write_checkpoint(sb, 1)
    return sb


def new_store(sandbox: Path, **kw) -> Store:
    return Store(sandbox, STORE, PATHS, **kw)


# ------------------------------------------------------------------ round trip


def test_large_file_copied_once_is_checksummed_as_written(sandbox: Path) -> None:
    """A file larger than the copy buffer and the writeback step (the copy reads each byte once
    and checksums that buffer) commits with the CRC-32 of its bytes, verifies, and restores
    byte for byte; a flipped byte in the store is then refused as corrupt."""
    import zlib

    data = os.urandom(3 << 20) + bytes(range(256)) * 4097
    (sandbox / "a.bin").write_bytes(data)
    store = new_store(sandbox)
    res = store.commit({"seq": 1})
    manifest = json.loads((sandbox / STORE / MANIFEST).read_text())
    entry = next(e for e in manifest["entries"] if e["path"] == "a.bin")
    assert entry["size"] == len(data) and entry["crc32"] == f"{zlib.crc32(data):08x}"
    assert res.bytes == checkpoint_bytes(sandbox, PATHS)
    store.verify()
    (sandbox / "a.bin").write_bytes(b"changed")
    store.restore()
    assert (sandbox / "a.bin").read_bytes() == data
    with open(sandbox / STORE / "a.bin", "r+b") as f:
        f.seek(len(data) // 2)
        byte = f.read(1)
        f.seek(len(data) // 2)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(CorruptStore, match="checksum"):
        new_store(sandbox).verify()


def test_commit_verify_restore_round_trip(sandbox: Path) -> None:
    """Committed files and directory trees come back byte for byte, with modes and state."""
    (sandbox / "dir" / "empty").mkdir()
    os.chmod(sandbox / "a.bin", 0o640)
    store = new_store(sandbox)
    assert not store.exists()
    assert store.read_state() is None
    res = store.commit({"seq": 1, "note": "first"})
    assert res.files == 4 and res.bytes == checkpoint_bytes(sandbox, PATHS)
    assert res.method in ("copy", "reflink")
    assert store.exists()
    assert store.verify() == {"seq": 1, "note": "first"}
    assert store.read_state() == {"seq": 1, "note": "first"}
    before = {p.relative_to(sandbox): p.read_bytes() for p in sandbox.rglob("*.bin")}
    write_checkpoint(sandbox, 2)
    (sandbox / "dir" / "stray.tmp").write_text("not in the checkpoint")
    got = store.restore()
    assert got.files == 4 and got.bytes == res.bytes
    after = {p.relative_to(sandbox): p.read_bytes() for p in sandbox.rglob("*.bin")}
    assert after == before
    assert not (sandbox / "dir" / "stray.tmp").exists(), "a directory is restored whole"
    assert (sandbox / "dir" / "empty").is_dir(), "empty directories are kept"
    assert (sandbox / "a.bin").stat().st_mode & 0o777 == 0o640
    assert store.verify()["seq"] == 1, "restore leaves the store as it was"


def test_layout_is_stable(sandbox: Path) -> None:
    """The store holds the paths under their own names, plus state.json and MANIFEST.json."""
    store = new_store(sandbox)
    store.commit({"seq": 1})
    names = sorted(str(p.relative_to(sandbox / STORE)) for p in (sandbox / STORE).rglob("*"))
    assert names == sorted(
        [MANIFEST, STATE, "a.bin", "b.bin", "dir", "dir/c.bin", "dir/sub", "dir/sub/d.bin"]
    )
    man = json.loads((sandbox / STORE / MANIFEST).read_text())
    assert man["format"] == "checkpoint-supervisor-store" and man["version"] == 1
    assert man["checksum"] == "crc32" and man["paths"] == PATHS
    files = {e["path"]: e for e in man["entries"] if e["type"] == "file"}
    assert files["a.bin"]["size"] == (sandbox / "a.bin").stat().st_size


def test_second_commit_replaces_first_and_leaves_nothing_behind(sandbox: Path) -> None:
    """A later commit replaces the store whole; no staging or old directory remains."""
    store = new_store(sandbox)
    store.commit({"seq": 1})
    write_checkpoint(sandbox, 2)
    store.commit({"seq": 2})
    assert store.verify() == {"seq": 2}
    assert store_seqs(sandbox / STORE) == {2}
    assert sorted(p.name for p in sandbox.iterdir()) == [*PATHS[:2], "checkpoint.atomic", "dir"]
    assert store.cleanup_staging() == []


def test_commit_without_exchange_uses_two_renames(sandbox: Path) -> None:
    """Where renameat2(RENAME_EXCHANGE) is unavailable, commits still replace the store."""

    class NoExchange(FS):
        def exchange(self, a: Path, b: Path) -> None:
            raise OSError(errno.EINVAL, "no exchange here")

    store = new_store(sandbox, fs=NoExchange())
    for seq in (1, 2, 3):
        write_checkpoint(sandbox, seq)
        store.commit({"seq": seq})
        assert store.verify() == {"seq": seq} and store_seqs(sandbox / STORE) == {seq}
    assert sorted(p.name for p in sandbox.iterdir()) == [*PATHS[:2], "checkpoint.atomic", "dir"]
    write_checkpoint(sandbox, 9)
    store.restore()
    assert store_seqs(sandbox) == {3}


def test_move_commit_takes_the_working_files(sandbox: Path) -> None:
    """commit(move=True) renames the working paths into the store; restore brings them back."""
    store = new_store(sandbox)
    res = store.commit({"seq": 1}, move=True)
    assert res.method == "rename" and res.files == 4
    assert not (sandbox / "a.bin").exists() and not (sandbox / "dir").exists()
    assert store.verify() == {"seq": 1}
    store.restore()
    assert store_seqs(sandbox) == {1}
    assert store.verify() == {"seq": 1}


def test_commit_state_recommits_the_same_files(sandbox: Path) -> None:
    """commit_state records a new state with the committed files, not the working ones."""
    store = new_store(sandbox)
    store.commit({"seq": 1})
    write_checkpoint(sandbox, 2)  # the program moved on, but this is not a checkpoint
    res = store.commit_state({"seq": 1, "final_status": 0})
    assert res.files == 4
    assert store.verify() == {"seq": 1, "final_status": 0}
    assert store_seqs(sandbox / STORE) == {1}


def test_commit_state_without_a_store_holds_only_the_state(tmp_path: Path) -> None:
    """With nothing committed yet, commit_state makes a store of the state alone."""
    store = Store(tmp_path, STORE, ["never-written"])
    res = store.commit_state({"final_status": 3})
    assert res.files == 0
    assert store.verify() == {"final_status": 3}
    assert store.restore().files == 0
    assert not (tmp_path / "never-written").exists()


def test_keep_previous_keeps_the_old_store(sandbox: Path) -> None:
    """keep_previous=True leaves the replaced store, complete, at <store>.previous."""
    store = new_store(sandbox, keep_previous=True)
    for seq in (1, 2, 3):
        write_checkpoint(sandbox, seq)
        store.commit({"seq": seq})
    prev = Store(sandbox, store.previous, PATHS)
    assert prev.verify() == {"seq": 2} and store_seqs(store.previous) == {2}
    assert store.verify() == {"seq": 3}


def test_empty_store_directory_counts_as_no_store(sandbox: Path) -> None:
    """An empty directory at the store path is no checkpoint; a commit replaces it."""
    (sandbox / STORE).mkdir()
    store = new_store(sandbox)
    assert not store.exists()
    store.commit({"seq": 1})
    assert store.verify() == {"seq": 1}


def test_symlinks_inside_a_directory_are_stored_as_links(sandbox: Path) -> None:
    """A symlink inside a checkpoint directory is stored and restored as a link, not followed."""
    os.symlink("c.bin", sandbox / "dir" / "latest")
    os.symlink("/etc/hostname", sandbox / "dir" / "outside")
    store = new_store(sandbox)
    store.commit({"seq": 1})
    assert os.readlink(sandbox / STORE / "dir" / "latest") == "c.bin"
    store.verify()
    (sandbox / "dir" / "latest").unlink()
    store.restore()
    assert os.readlink(sandbox / "dir" / "latest") == "c.bin"
    assert os.readlink(sandbox / "dir" / "outside") == "/etc/hostname"


def test_checkpoint_bytes_counts_regular_files(sandbox: Path) -> None:
    """checkpoint_bytes sums the sizes of the regular files; missing paths count zero."""
    want = sum(p.stat().st_size for p in sandbox.rglob("*.bin"))
    assert checkpoint_bytes(sandbox, [*PATHS, "missing"]) == want


def test_importing_the_store_loads_neither_psutil_nor_tenacity() -> None:
    """Start-up cost: supervisor.store imports tenacity only when it commits, psutil never."""
    code = (
        "import sys, supervisor.store; "
        "assert 'tenacity' not in sys.modules and 'psutil' not in sys.modules, sys.modules.keys()"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ------------------------------------------------------------------ fingerprint


def test_fingerprint_changes_with_any_write(sandbox: Path) -> None:
    """Equal fingerprints mean nothing changed; a write changes it even if mtime is put back."""
    store = new_store(sandbox)
    fp = store.fingerprint()
    assert fp == store.fingerprint() and hash(fp) == hash(store.fingerprint())
    st = (sandbox / "b.bin").stat()
    with open(sandbox / "b.bin", "r+b") as f:
        f.write(b"X")
    os.utime(sandbox / "b.bin", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.fingerprint() != fp, "ctime catches a write that restored mtime"
    fp2 = store.fingerprint()
    (sandbox / "dir" / "new").write_text("x")
    assert store.fingerprint() != fp2


def test_fingerprint_lists_missing_paths(tmp_path: Path) -> None:
    """A missing checkpoint path appears in the fingerprint as missing."""
    store = Store(tmp_path, STORE, ["x", "y"])
    assert store.fingerprint() == (("x", "missing"), ("y", "missing"))
    (tmp_path / "x").write_text("1")
    assert store.fingerprint()[0][:2] == ("x", "f")


def test_fingerprint_after_restore_is_a_new_baseline(sandbox: Path) -> None:
    """restore() keeps content and mtime but makes new inodes, so the fingerprint changes;
    it is stable afterwards (take the baseline after restoring)."""
    store = new_store(sandbox)
    before = store.fingerprint()
    store.commit({"seq": 1})
    store.restore()
    after = store.fingerprint()
    assert after != before
    assert after == store.fingerprint()
    mtimes = {e[0]: e[3] for e in before if e[1] == "f"}
    assert {e[0]: e[3] for e in after if e[1] == "f"} == mtimes, "restore keeps file mtimes"


# ------------------------------------------------------------------ corruption


def committed(sandbox: Path) -> Store:
    store = new_store(sandbox)
    store.commit({"seq": 1})
    return store


def flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda s: flip_byte(s / "dir" / "sub" / "d.bin"), "checksum"),
        (lambda s: os.truncate(s / "a.bin", 10), "bytes"),
        (lambda s: (s / "b.bin").unlink(), "lacks"),
        (lambda s: (s / MANIFEST).write_text("{not json"), "not valid JSON"),
        (lambda s: (s / MANIFEST).unlink(), "no MANIFEST"),
        (lambda s: (s / MANIFEST).write_text('{"format": "other"}'), "not a checkpoint-supervisor"),
        (lambda s: (s / STATE).write_text('{"seq": 2}\n'), "digest"),
        (lambda s: (s / "dir/c.bin").unlink() or (s / "dir/c.bin").mkdir(), "not a regular"),
    ],
    ids=["flip", "truncate", "delete", "garbage-manifest", "no-manifest", "foreign-manifest",
         "state", "type"],
)
def test_corruption_is_detected_and_quarantine_keeps_it(sandbox: Path, damage, reason) -> None:
    """Any damage makes verify() raise CorruptStore with a one-line reason; quarantine moves
    the store aside whole, never deleting it."""
    store = committed(sandbox)
    damage(sandbox / STORE)
    with pytest.raises(CorruptStore, match=reason) as info:
        store.verify()
    assert "\n" not in str(info.value)
    files_before = sorted(p.relative_to(sandbox / STORE) for p in (sandbox / STORE).rglob("*"))
    moved = store.quarantine()
    assert moved.name.startswith("checkpoint.atomic.corrupt-") and moved.parent == sandbox
    assert sorted(p.relative_to(moved) for p in moved.rglob("*")) == files_before
    assert not store.exists()


def test_manifest_with_unsafe_path_is_corrupt(sandbox: Path) -> None:
    """A manifest naming a path outside the store is corrupt (never followed on restore)."""
    store = committed(sandbox)
    man = json.loads((sandbox / STORE / MANIFEST).read_text())
    man["paths"].append("../escape")
    (sandbox / STORE / MANIFEST).write_text(json.dumps(man))
    with pytest.raises(CorruptStore, match="unsafe"):
        store.verify()
    with pytest.raises(CorruptStore, match="unsafe"):
        store.restore()


def test_quarantine_names_do_not_collide(sandbox: Path) -> None:
    """Two quarantines in the same second get distinct names (-1 suffix)."""
    store = committed(sandbox)
    first = store.quarantine()
    store.commit({"seq": 2})
    second = store.quarantine()
    assert first != second and first.exists() and second.exists()


def test_extra_files_from_spool_are_ignored_and_reported(sandbox: Path) -> None:
    """SPOOL keeps files a later checkpoint dropped: verify ignores and reports them, and
    restore does not bring them back."""
    store = committed(sandbox)
    (sandbox / STORE / "dir" / "stale-from-older-checkpoint").write_text("old")
    (sandbox / STORE / "stray-top").write_text("old")
    assert store.verify() == {"seq": 1}
    assert store.extra_files == ["dir/stale-from-older-checkpoint", "stray-top"]
    store.restore()
    assert not (sandbox / "dir" / "stale-from-older-checkpoint").exists()
    assert not (sandbox / "stray-top").exists()


def test_store_replaced_by_a_plain_file(sandbox: Path) -> None:
    """A plain file at the store path: exists() says look, verify() and commit() say why."""
    store = new_store(sandbox)
    (sandbox / STORE).write_text("not a directory")
    assert store.exists()
    with pytest.raises(CorruptStore, match="regular file, not a store directory"):
        store.verify()
    with pytest.raises(CorruptStore, match="not a directory"):
        store.commit({"seq": 1})
    assert (sandbox / STORE).read_text() == "not a directory"
    moved = store.quarantine()
    assert moved.read_text() == "not a directory"
    store.commit({"seq": 1})
    assert store.verify() == {"seq": 1}


def test_verify_without_store_is_a_store_error(tmp_path: Path) -> None:
    """verify() with no store at all raises StoreError (not CorruptStore: nothing to move)."""
    store = Store(tmp_path, STORE, ["x"])
    with pytest.raises(StoreError, match="no committed store") as info:
        store.verify()
    assert not isinstance(info.value, CorruptStore)


# ------------------------------------------------------------------ refusals


def test_missing_checkpoint_path_commits_nothing(sandbox: Path) -> None:
    """A checkpoint path that does not exist refuses the commit; the store is unchanged."""
    store = committed(sandbox)
    write_checkpoint(sandbox, 2)
    (sandbox / "b.bin").unlink()
    with pytest.raises(CheckpointPathMissing, match=r"'b\.bin' does not exist"):
        store.commit({"seq": 2})
    assert store.verify() == {"seq": 1} and store_seqs(sandbox / STORE) == {1}
    assert store.cleanup_staging() == []


def test_sandbox_removed_under_us(sandbox: Path) -> None:
    """If the working checkpoint vanishes entirely, commit refuses and commits nothing."""
    store = new_store(sandbox)
    for p in PATHS:
        target = sandbox / p
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    with pytest.raises(CheckpointPathMissing):
        store.commit({"seq": 1})
    assert not store.exists()


@pytest.mark.parametrize(
    ("paths", "store", "match"),
    [
        (["/abs/path"], STORE, "absolute"),
        (["../up"], STORE, "leaves the sandbox"),
        (["."], STORE, "sandbox itself"),
        ([""], STORE, "empty"),
        ([], STORE, "at least one"),
        (["a", "./a"], STORE, "listed twice"),
        (["d", "d/x"], STORE, "overlap"),
        (["state.json"], STORE, "reserves"),
        (["MANIFEST.json"], STORE, "reserves"),
        (["checkpoint.atomic"], STORE, "overlaps the store"),
        (["out"], Path("out/store"), "overlaps the store"),
        (["x"], Path("."), "contain the sandbox"),
    ],
)
def test_bad_paths_are_config_errors(tmp_path: Path, paths, store, match) -> None:
    """Checkpoint paths must be relative, inside the sandbox, distinct, not the store."""
    with pytest.raises(ConfigError, match=match):
        Store(tmp_path, store, paths)


def test_symlink_outside_sandbox_is_refused(tmp_path: Path) -> None:
    """A checkpoint path that is a symlink leading outside the sandbox is a ConfigError."""
    sb = tmp_path / "sb"
    sb.mkdir()
    (tmp_path / "elsewhere").write_text("x")
    os.symlink(tmp_path / "elsewhere", sb / "ckpt")
    with pytest.raises(ConfigError, match="outside the sandbox"):
        Store(sb, STORE, ["ckpt"])
    (tmp_path / "realdir").mkdir()
    os.symlink(tmp_path / "realdir", sb / "linked")
    with pytest.raises(ConfigError, match="below symlink"):
        Store(sb, STORE, ["linked/file"])


def test_symlink_inside_sandbox_is_refused_with_the_real_path(tmp_path: Path) -> None:
    """A checkpoint path that is a symlink within the sandbox is refused, naming the target."""
    (tmp_path / "real.dat").write_text("x")
    os.symlink("real.dat", tmp_path / "ckpt")
    with pytest.raises(ConfigError, match="list the real path"):
        Store(tmp_path, STORE, ["ckpt"])


def test_symlink_appearing_later_is_refused_at_commit(tmp_path: Path) -> None:
    """A checkpoint path that becomes a symlink after start-up makes commit raise StoreError."""
    store = Store(tmp_path, STORE, ["ckpt"])
    (tmp_path / "elsewhere").mkdir()
    os.symlink("/etc/hostname", tmp_path / "ckpt")
    with pytest.raises(StoreError, match=r"outside the sandbox.*nothing was committed"):
        store.commit({"seq": 1})
    assert not store.exists()


def test_store_outside_sandbox_is_allowed(tmp_path: Path) -> None:
    """The store may live outside the sandbox (an absolute --store); it must not overlap."""
    sb = tmp_path / "sb"
    sb.mkdir()
    (sb / "f").write_text("x")
    store = Store(sb, tmp_path / "elsewhere" / "store", ["f"])
    (tmp_path / "elsewhere").mkdir()
    store.commit({"seq": 1})
    assert store.verify() == {"seq": 1}


def test_nested_checkpoint_path(tmp_path: Path) -> None:
    """A checkpoint path below a directory keeps its relative name in the store and is
    restored into a recreated parent directory."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "ckpt.dat").write_bytes(b"nested")
    (tmp_path / "out" / "log.txt").write_text("not part of the checkpoint")
    store = Store(tmp_path, STORE, ["out/ckpt.dat"])
    store.commit({"seq": 1})
    assert (tmp_path / STORE / "out" / "ckpt.dat").read_bytes() == b"nested"
    assert not (tmp_path / STORE / "out" / "log.txt").exists()
    assert store.verify() == {"seq": 1} and store.extra_files == []
    shutil.rmtree(tmp_path / "out")
    store.restore()
    assert (tmp_path / "out" / "ckpt.dat").read_bytes() == b"nested"


# ------------------------------------------------------------------ issue 12: torn, mixed, empty


def leftovers(sandbox: Path) -> list[str]:
    return sorted(n for n in os.listdir(sandbox) if ".staging-" in n or ".old-" in n)


def test_commit_checks_the_approved_fingerprint_before_copying(sandbox: Path) -> None:
    """commit(expect=fp): files that changed since the rules approved ``fp`` are not committed
    (CheckpointChanged, a StoreError); the previous store stays; nothing is left behind."""
    from supervisor.store import CheckpointChanged

    store = new_store(sandbox)
    fp = store.fingerprint()
    res = store.commit({"seq": 1}, expect=fp)
    assert res.fingerprint == fp
    approved = store.fingerprint()
    write_checkpoint(sandbox, 2)
    with pytest.raises(CheckpointChanged, match="changed before it was copied"):
        store.commit({"seq": 2}, expect=approved)
    assert isinstance(CheckpointChanged("x"), StoreError)
    assert store.verify() == {"seq": 1} and store_seqs(store.store) == {1}
    assert leftovers(sandbox) == []


def test_a_file_rewritten_during_the_copy_is_never_committed(sandbox: Path) -> None:
    """A program that rewrites b.bin while a.bin is being copied: the store's after-copy check
    finds the change and commits nothing (the copy would mix steps 1 and 2, with checksums that
    verify); ``on_staged`` is still called once, so a held program is always continued."""
    from supervisor.store import CheckpointChanged

    calls: list[str] = []

    class Racing(FS):
        def copy_checksum(self, src_fd: int, dst_fd: int) -> tuple[str, int, int]:
            result = super().copy_checksum(src_fd, dst_fd)
            if not calls:
                write_checkpoint(sandbox, 2)  # the program's next step, mid-copy
                calls.append("wrote")
            return result

    store = new_store(sandbox, fs=Racing())
    thawed: list[int] = []
    with pytest.raises(CheckpointChanged, match="changed while it was copied"):
        store.commit({"seq": 1}, expect=store.fingerprint(), on_staged=lambda: thawed.append(1))
    assert thawed == [1]
    assert not store.exists() and leftovers(sandbox) == []
    # without the check, the same race commits a mixed store that verifies: the bug of issue 12
    calls.clear()
    write_checkpoint(sandbox, 1)
    store.commit({"seq": 1})
    assert store.verify() == {"seq": 1}
    assert store_seqs(store.store) == {1, 2}


def test_an_empty_checkpoint_is_refused(tmp_path: Path) -> None:
    """allow_empty=False: checkpoint paths with no byte of data (an empty directory tree, an
    empty or just-truncated file) are never committed (EmptyCheckpoint)."""
    from supervisor.store import EmptyCheckpoint

    (tmp_path / "ckpt" / "sub").mkdir(parents=True)
    (tmp_path / "state").write_bytes(b"")
    store = Store(tmp_path, STORE, ["ckpt", "state"])
    with pytest.raises(EmptyCheckpoint, match="hold no data"):
        store.commit({"seq": 1}, allow_empty=False)
    assert not store.exists() and leftovers(tmp_path) == []
    (tmp_path / "state").write_bytes(b"x")
    store.commit({"seq": 1}, allow_empty=False)
    assert store.verify() == {"seq": 1}


def test_content_id_is_the_same_for_the_same_bytes(sandbox: Path) -> None:
    """content_id(): equal for two commits of the same bytes (new inodes, new times), different
    after any change of content."""
    store = new_store(sandbox)
    store.commit({"seq": 1})
    first = store.content_id()
    shutil.rmtree(sandbox / "dir")
    (sandbox / "a.bin").unlink()
    (sandbox / "b.bin").unlink()
    write_checkpoint(sandbox, 1)
    store.commit({"seq": 2})
    assert store.content_id() == first
    write_checkpoint(sandbox, 2)
    store.commit({"seq": 3})
    assert store.content_id() != first


# ------------------------------------------------------------------ issue 15: idle memory


def test_opening_and_restoring_a_store_loads_no_openssl_logging_or_dataclasses(sandbox: Path) -> None:
    """The supervisor imports the store at start and then idles: opening a store, verifying and
    restoring a committed checkpoint (its state's SHA-256 included) imports neither hashlib's
    OpenSSL (~3.5 MB of RSS), nor logging, dataclasses, datetime or secrets."""
    new_store(sandbox).commit({"seq": 1})
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from supervisor.store import Store\n"
        f"s = Store({str(sandbox)!r}, {str(STORE)!r}, {PATHS!r})\n"
        "s.cleanup_staging()\n"
        "assert s.exists()\n"
        "print(s.verify()['seq'])\n"
        "s.restore()\n"
        "heavy = ('_hashlib', 'hashlib', 'logging', 'dataclasses', 'datetime', 'secrets')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["1", "[]"]


def test_the_state_digest_is_the_same_sha256_as_hashlib(sandbox: Path) -> None:
    """The manifest's digest of state.json, taken without hashlib, is hashlib's SHA-256: stores
    written before and after verify alike."""
    import hashlib

    store = new_store(sandbox)
    store.commit({"seq": 7})
    man = json.loads((store.store / MANIFEST).read_text())
    assert man["state"]["sha256"] == hashlib.sha256((store.store / STATE).read_bytes()).hexdigest()


def test_a_commit_without_transient_errors_does_not_import_tenacity(sandbox: Path) -> None:
    """tenacity (~3 MB of RSS, several ms to import) is loaded only to retry a transient error:
    a plain commit does without it, and the store it writes verifies."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from supervisor.store import Store\n"
        f"s = Store({str(sandbox)!r}, {str(STORE)!r}, {PATHS!r})\n"
        "s.commit({'seq': 3})\n"
        "print(s.verify()['seq'], 'tenacity' in sys.modules, '_hashlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "False", "False"]

"""Crash consistency of the store: every failing step, SIGKILL at random, full and read-only
file systems, transient errors.

The rule everywhere: after any fault, the store verifies and holds exactly the previous
checkpoint or exactly the new one (every file carries the same commit number as the state),
and cleanup_staging leaves no staging behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from support.helpers import load_bench
from support.relutil import mounted

from supervisor.errors import StoreError
from supervisor.store import FS, Store, iter_fs_methods

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["a.bin", "b.bin", "dir/c.bin", "dir/sub/d.bin"]
PATHS = ["a.bin", "b.bin", "dir"]
STORE = Path("checkpoint.atomic")
LEFTOVER_TAGS = (".staging-", ".old-", ".trash-", ".ckpt-restore-", ".ckpt-trash-")


class FaultFS(FS):
    """An FS that records every call and makes call number ``fail_at`` fail.

    ``after=False``: the call fails before doing anything. ``after=True``: it does its work and
    then reports the error (as NFS can, or an fsync that loses the race with a disk error).
    ``no_exchange``: renameat2(RENAME_EXCHANGE) is unavailable (the two-rename fallback).
    ``only``: count only calls whose first argument's text contains this string.
    """

    def __init__(
        self,
        fail_at: int | None = None,
        err: int = errno.EIO,
        *,
        after: bool = False,
        no_exchange: bool = False,
        only: str | None = None,
        times: int = 1,
    ) -> None:
        self.fail_at = fail_at
        self.err = err
        self.after = after
        self.no_exchange = no_exchange
        self.only = only
        self.times = times
        self.calls: list[str] = []
        self.failed: str | None = None
        self.armed = False

    def arm(self) -> FaultFS:
        """Count (and fail) calls from now on: not those of Store's constructor."""
        self.armed = True
        return self

    def _call(self, name: str, args: tuple[Any, ...]) -> Any:
        real = getattr(FS, name)
        if name == "exchange" and self.no_exchange:
            real = _no_exchange
        skip = self.only is not None and (not args or self.only not in str(args[0]))
        if not self.armed or skip:
            return real(self, *args)
        k = len(self.calls)
        self.calls.append(name)
        hit = self.fail_at is not None and self.fail_at <= k < self.fail_at + self.times
        if hit and not self.after:
            self.failed = name
            raise OSError(self.err, os.strerror(self.err), str(args[0]) if args else None)
        result = real(self, *args)
        if hit:
            self.failed = name
            if name == "open":
                os.close(result)
            raise OSError(self.err, os.strerror(self.err), str(args[0]) if args else None)
        return result


def _no_exchange(self: FS, a: Path, b: Path) -> None:
    raise OSError(errno.ENOSYS, "no renameat2 here", str(a))


def _make(name: str) -> Callable[..., Any]:
    def method(self: FaultFS, *args: Any) -> Any:
        return self._call(name, args)

    method.__name__ = name
    return method


for _name in iter_fs_methods():
    setattr(FaultFS, _name, _make(_name))


def write_checkpoint(sandbox: Path, seq: int, size: int = 3000) -> None:
    for i, name in enumerate(NAMES):
        p = sandbox / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"seq={seq} file={i}\n".encode() + bytes([seq % 251]) * size)


def seqs_in(root: Path) -> set[int]:
    out = set()
    for name in NAMES:
        head = (root / name).read_bytes().split(b"\n", 1)[0].decode()
        out.add(int(head.split()[0].split("=")[1]))
    return out


def leftovers(sandbox: Path) -> list[str]:
    return sorted(
        str(p.relative_to(sandbox))
        for p in sandbox.rglob("*")
        if any(t in p.name for t in LEFTOVER_TAGS)
    )


def check_store(sandbox: Path, allowed: set[int]) -> int:
    """The next start's view: cleanup, verify, exactly one commit's files. Returns its seq."""
    store = Store(sandbox, STORE, PATHS)
    store.cleanup_staging()
    assert leftovers(sandbox) == []
    state = store.verify()
    seq = int(state["seq"])
    assert seq in allowed, f"store holds seq {seq}, expected one of {allowed}"
    assert seqs_in(sandbox / STORE) == {int(state["files_seq"])}, "mixed store"
    return seq


# ------------------------------------------------------------------ every step fails in turn


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A scratch directory on tmpfs where there is one: the fault tests check the order of
    operations, not the disk, and a disk's fsync would make thousands of commits slow."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="store-faults-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


VARIANTS = {
    "copy": dict(move=False, no_exchange=False, keep_previous=False, op="commit"),
    "copy-fallback": dict(move=False, no_exchange=True, keep_previous=False, op="commit"),
    "move": dict(move=True, no_exchange=False, keep_previous=False, op="commit"),
    "move-fallback": dict(move=True, no_exchange=True, keep_previous=False, op="commit"),
    "keep-previous": dict(move=False, no_exchange=False, keep_previous=True, op="commit"),
    "keep-previous-fallback": dict(move=False, no_exchange=True, keep_previous=True, op="commit"),
    "commit_state": dict(move=False, no_exchange=False, keep_previous=False, op="commit_state"),
}


def prepare(sandbox: Path, keep_previous: bool) -> None:
    """A store holding seq 1 (and with keep_previous a .previous holding seq 0), working seq 2."""
    store = Store(sandbox, STORE, PATHS, keep_previous=keep_previous)
    if keep_previous:
        write_checkpoint(sandbox, 0)
        store.commit({"seq": 0, "files_seq": 0})
    write_checkpoint(sandbox, 1)
    store.commit({"seq": 1, "files_seq": 1})
    write_checkpoint(sandbox, 2)


def attempt(sandbox: Path, variant: dict[str, Any], fs: FaultFS) -> tuple[bool, str]:
    store = Store(
        sandbox, STORE, PATHS, fs=fs, retry_seconds=0, keep_previous=variant["keep_previous"]
    )
    fs.arm()
    try:
        if variant["op"] == "commit_state":
            store.commit_state({"seq": 2, "files_seq": 1})
        else:
            store.commit({"seq": 2, "files_seq": 2}, move=variant["move"])
    except StoreError as e:
        return False, str(e)
    return True, ""


def count_calls(tmp: Path, variant: dict[str, Any]) -> list[str]:
    sandbox = tmp / "count"
    sandbox.mkdir()
    prepare(sandbox, variant["keep_previous"])
    fs = FaultFS(no_exchange=variant["no_exchange"])
    ok, _ = attempt(sandbox, variant, fs)
    assert ok
    return fs.calls


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_commit_step_failing_keeps_old_or_new(fast_tmp: Path, name: str) -> None:
    """Fail the k-th file-system call of a commit, for every k, with EIO and ENOSPC before the
    call and EIO after it: the commit either succeeds (store = new) or raises StoreError naming
    the errno (store = old, working files untouched); the store always verifies, never mixed,
    and cleanup_staging leaves nothing behind."""
    variant = VARIANTS[name]
    calls = count_calls(fast_tmp, variant)
    kinds = set(calls)
    assert {"open", "copy_checksum" if variant["op"] == "commit" and not variant["move"] else "open",
            "fsync", "fsync_dir", "mkdir", "write"} <= kinds
    assert kinds & {"exchange", "rename"}
    new_seq = 2
    outcomes: Counter[str] = Counter()
    for err, after in ((errno.EIO, False), (errno.ENOSPC, False), (errno.EIO, True)):
        for k in range(len(calls)):
            sandbox = fast_tmp / f"k{k}-{err}-{after}"
            sandbox.mkdir()
            prepare(sandbox, variant["keep_previous"])
            fs = FaultFS(k, err, after=after, no_exchange=variant["no_exchange"])
            ok, message = attempt(sandbox, variant, fs)
            where = f"{name}: call {k} ({calls[k]}) failing with {errno.errorcode[err]}"
            where += " after doing its work" if after else ""
            if ok:
                outcomes["committed"] += 1
                assert check_store(sandbox, {new_seq}) == new_seq, where
                if variant["move"]:
                    assert not (sandbox / "a.bin").exists(), where
            else:
                outcomes["refused"] += 1
                assert errno.errorcode[err] in message, where
                assert "the previous checkpoint is intact" in message, where
                assert check_store(sandbox, {1}) == 1, where
                assert seqs_in(sandbox) == {2}, f"{where}: working files were lost"
            if variant["keep_previous"]:
                prev = Store(sandbox, sandbox / "checkpoint.atomic.previous", PATHS)
                if prev.exists():
                    assert int(prev.verify()["seq"]) in {0, 1}, where
            shutil.rmtree(sandbox)
    assert outcomes["refused"] > 0 and outcomes["committed"] > 0, outcomes


def test_fault_enumeration_covers_every_kind_of_step(tmp_path: Path) -> None:
    """The enumerated commit path includes each kind of call issue 6 names: open, write (and
    the checksumming copy), fsync, rename or exchange, directory fsync, removal of the old store."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    copy = Counter(count_calls(tmp_path / "a", VARIANTS["copy"]))
    fallback = Counter(count_calls(tmp_path / "b", VARIANTS["copy-fallback"]))
    for kind in ("open", "copy_checksum", "write", "fsync", "fsync_dir", "exchange", "rmtree", "mkdir"):
        assert copy[kind] > 0, kind
    assert fallback["rename"] >= 2 and fallback["rmtree"] >= 1


@pytest.mark.parametrize("no_exchange", [False, True], ids=["exchange", "fallback"])
def test_every_restore_step_failing_keeps_the_store(fast_tmp: Path, no_exchange: bool) -> None:
    """Fail the k-th call of a restore, for every k: the store stays intact, each working path
    is wholly old or wholly restored, and after cleanup no temporary is left; a second restore
    then succeeds."""
    base = fast_tmp / "count"
    base.mkdir()
    prepare(base, False)
    fs = FaultFS(no_exchange=no_exchange)
    restorer = Store(base, STORE, PATHS, fs=fs)
    fs.arm()
    restorer.restore()
    for err, after in ((errno.EIO, False), (errno.ENOSPC, False), (errno.EIO, True)):
        for k in range(len(fs.calls)):
            sandbox = fast_tmp / f"r{k}-{err}-{after}"
            sandbox.mkdir()
            prepare(sandbox, False)
            ffs = FaultFS(k, err, after=after, no_exchange=no_exchange)
            store = Store(sandbox, STORE, PATHS, fs=ffs)
            ffs.arm()
            with contextlib.suppress(StoreError):
                store.restore()
            check_store(sandbox, {1})
            for top in ("a.bin", "b.bin"):
                assert seqs_in_file(sandbox / top) in {1, 2}
            dir_seqs = {seqs_in_file(sandbox / n) for n in ("dir/c.bin", "dir/sub/d.bin")}
            assert len(dir_seqs) == 1, "a directory is restored whole or not at all"
            Store(sandbox, STORE, PATHS).restore()
            assert seqs_in(sandbox) == {1}
            shutil.rmtree(sandbox)


def seqs_in_file(path: Path) -> int:
    head = path.read_bytes().split(b"\n", 1)[0].decode()
    return int(head.split()[0].split("=")[1])


def test_killed_fallback_swap_is_undone_at_next_start(tmp_path: Path) -> None:
    """Killed between the fallback's two renames (store -> .old, staging -> store), the next
    start's cleanup_staging puts the old store back and removes the staging."""
    prepare(tmp_path, False)
    store_dir = tmp_path / STORE
    os.rename(store_dir, tmp_path / "checkpoint.atomic.old-123-abcd")
    (tmp_path / "checkpoint.atomic.staging-c-123-abcd").mkdir()
    store = Store(tmp_path, STORE, PATHS)
    done = store.cleanup_staging()
    assert len(done) == 2
    assert check_store(tmp_path, {1}) == 1


def test_killed_move_commit_gives_the_working_files_back(tmp_path: Path) -> None:
    """Killed while moving working paths into staging (no manifest yet), the next start moves
    them back instead of deleting the only copy."""
    write_checkpoint(tmp_path, 5)
    staging = tmp_path / "checkpoint.atomic.staging-m-9-ffff"
    staging.mkdir()
    os.rename(tmp_path / "a.bin", staging / "a.bin")
    os.rename(tmp_path / "dir", staging / "dir")
    Store(tmp_path, STORE, PATHS).cleanup_staging()
    assert seqs_in(tmp_path) == {5}
    assert leftovers(tmp_path) == []


def test_killed_restore_leftovers_are_removed(tmp_path: Path) -> None:
    """Temporary copies of a killed restore are removed at the next start."""
    prepare(tmp_path, False)
    (tmp_path / ".a.bin.ckpt-restore-1-aa").write_text("partial")
    (tmp_path / ".dir.ckpt-trash-1-bb").mkdir()
    (tmp_path / "dir" / "sub" / ".d.bin.ckpt-restore-1-cc").write_text("not ours: deeper")
    assert len(Store(tmp_path, STORE, PATHS).cleanup_staging()) == 2
    assert leftovers(tmp_path) == ["dir/sub/.d.bin.ckpt-restore-1-cc"]


# ------------------------------------------------------------------ transient errors


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    """EAGAIN, EBUSY and EINTR are retried within retry_seconds; the commit then succeeds."""
    for err in (errno.EAGAIN, errno.EBUSY, errno.EINTR):
        sandbox = tmp_path / str(err)
        sandbox.mkdir()
        prepare(sandbox, False)
        fs = FaultFS(5, err, times=2)
        store = Store(sandbox, STORE, PATHS, fs=fs.arm(), retry_seconds=5)
        store.commit({"seq": 2, "files_seq": 2})
        assert check_store(sandbox, {2}) == 2


def test_lasting_transient_error_gives_up_within_the_budget(tmp_path: Path) -> None:
    """A transient error that lasts past retry_seconds becomes a StoreError naming it."""
    prepare(tmp_path, False)
    fs = FaultFS(0, errno.EBUSY, times=10**9, only=str(tmp_path))
    store = Store(tmp_path, STORE, PATHS, fs=fs, retry_seconds=0.3)
    fs.arm()
    with pytest.raises(StoreError, match=r"EBUSY.*the previous checkpoint is intact"):
        store.commit({"seq": 2, "files_seq": 2})
    assert check_store(tmp_path, {1}) == 1


def test_unreadable_checkpoint_file(tmp_path: Path) -> None:
    """A checkpoint file that cannot be read (EACCES; chmod 000 does not stop root, so an FS
    fault stands in) refuses the commit with a message naming EACCES and the file."""
    prepare(tmp_path, False)

    class Unreadable(FS):
        def open(self, path: Path, flags: int, mode: int = 0o600) -> int:
            if Path(path) == tmp_path / "dir" / "c.bin":
                raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return super().open(path, flags, mode)

    store = Store(tmp_path, STORE, PATHS, fs=Unreadable())
    with pytest.raises(StoreError) as info:
        store.commit({"seq": 2, "files_seq": 2})
    msg = str(info.value)
    assert "EACCES" in msg and "dir/c.bin" in msg and "the previous checkpoint is intact" in msg
    assert check_store(tmp_path, {1}) == 1


# ------------------------------------------------------------------ real full / read-only fs


def test_enospc_on_a_small_tmpfs(tmp_path: Path) -> None:
    """A real ENOSPC during commit (2 MiB tmpfs) raises StoreError naming ENOSPC and leaves the
    previous checkpoint intact and no staging; a restore that hits ENOSPC likewise."""
    mnt = tmp_path / "mnt"
    with mounted(["-t", "tmpfs", "-o", "size=2m", "tmpfs"], mnt):
        store = Store(mnt, STORE, PATHS)
        write_checkpoint(mnt, 1, size=120_000)
        store.commit({"seq": 1, "files_seq": 1})
        write_checkpoint(mnt, 2, size=260_000)
        with pytest.raises(StoreError) as info:
            store.commit({"seq": 2, "files_seq": 2})
        msg = str(info.value)
        assert "ENOSPC" in msg and "the previous checkpoint is intact" in msg, msg
        assert leftovers(mnt) == []
        assert check_store(mnt, {1}) == 1
        # Fill the rest, then restore: it needs room for a temporary copy.
        with open(mnt / "filler", "wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        with pytest.raises(StoreError, match=r"ENOSPC.*intact"):
            store.restore()
        assert leftovers(mnt) == []
        assert seqs_in(mnt) == {2}, "working files untouched by the failed restore"
        assert check_store(mnt, {1}) == 1


def test_erofs_on_a_read_only_bind_mount(tmp_path: Path) -> None:
    """On a read-only file system commit and restore raise StoreError naming EROFS; the
    committed checkpoint stays readable and intact."""
    src = tmp_path / "src"
    src.mkdir()
    prepare(src, False)
    ro = tmp_path / "ro"
    with mounted(["--bind", str(src)], ro):
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True,
                           capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as e:
            pytest.skip(f"cannot remount read-only ({e})")
        store = Store(ro, STORE, PATHS)
        with pytest.raises(StoreError, match=r"EROFS.*the previous checkpoint is intact"):
            store.commit({"seq": 2, "files_seq": 2})
        with pytest.raises(StoreError, match="EROFS"):
            store.restore()
        assert store.verify()["seq"] == 1
        assert store.cleanup_staging() == []
    assert check_store(src, {1}) == 1


# ------------------------------------------------------------------ SIGKILL at random moments


KILL_CASES = {
    # name: (mode, no exchange, kills, bytes per file, on tmpfs)
    "mixed-tmpfs": ("mixed", False, 200, 256 << 10, True),
    "mixed-fallback": ("mixed", True, 40, 64 << 10, False),
    "copy-1MiB": ("copy", False, 30, 1 << 20, False),
    "move-fallback": ("move", True, 30, 64 << 10, False),
}


@pytest.mark.parametrize("case", list(KILL_CASES))
def test_sigkill_during_commits(tmp_path: Path, fast_tmp: Path, case: str) -> None:
    """A worker that restores, then commits in a loop, is SIGKILLed at random moments (300
    kills over the four cases; a kill's effect does not depend on fsync, so the biggest case
    runs on tmpfs, the others on the disk): after every kill the next start finds a complete
    old or new checkpoint, never a mixed one, never an older one, and no leftovers."""
    mode, fallback, count, size, on_tmpfs = KILL_CASES[case]
    root = fast_tmp if on_tmpfs else tmp_path
    report = load_bench("kill_during_commit").run(count, mode=mode, size=size, seed=count, fallback=fallback, root=root)
    print(report.line())
    assert report.failures == []
    assert report.kills == count
    assert report.outcomes["leftovers cleaned"] > 0, "no kill landed inside a commit"


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    not os.environ.get("CKPT_SLOW_TESTS"),
    reason="long variant (about 8 min): CKPT_SLOW_TESTS=1 python -m pytest -m slow",
)
def test_sigkill_during_commits_long(tmp_path: Path) -> None:
    """The long variant: 2,000 kills (bench/kill_during_commit.py --count 5000 for more)."""
    report = load_bench("kill_during_commit").run(2000, mode="mixed", size=1 << 20, seed=7, root=tmp_path)
    print(report.line())
    assert report.failures == [] and report.kills == 2000

"""Fixtures of the real-HTCondor tier (``-m htcondor``): the pool, the ``.pyz``, job directories.

The pool: the HTCondor on PATH when ``condor_q`` answers; else ``../shared/htcondor/pool`` (as
root), used when it already runs in ``$HTCONDOR_POOL_DIR`` (``.ci/run`` starts it before pytest
and stops it after) and otherwise started for the session and stopped by the last test session
that used it (see ``poolkit.shared_pool_session``); else every test here skips with the reason.
The ``.pyz`` is built once per session (per xdist worker) from this checkout, as users ship it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.poolkit import ROOT, Pool, PoolUnavailable, job_dir, pool_session

BUILD_TIMEOUT = 240


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.htcondor)


@pytest.fixture(scope="session")
def pool() -> Iterator[Pool]:
    try:
        with pool_session() as found:
            yield found
    except PoolUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/ckpt-supervisor.pyz built from this checkout (wheels cached for the whole run)."""
    shared = tmp_path_factory.getbasetemp().parent
    wheels = Path(os.environ.get("CKPT_TEST_WHEELS") or shared / "pool-wheels")
    out = tmp_path_factory.mktemp("pyz") / "ckpt-supervisor.pyz"
    with open(shared / "pool-wheels.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one download at a time into the shared wheel cache
        proc = subprocess.run([sys.executable, "-m", "supervisor.build_pyz", "-o", str(out), "--wheels", str(wheels)],
                              capture_output=True, text=True, cwd=str(ROOT), timeout=BUILD_TIMEOUT, check=False)
    if proc.returncode != 0 and "download failed" in proc.stderr:
        pytest.skip(f"cannot download the wheels for the .pyz (no network to PyPI?): {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def folder(pool: Pool, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A job directory under /tmp (the submitter must own it); removed after the test."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    with job_dir(pool, name) as path:
        yield path


def copy_into(folder: Path, *files: Path) -> None:
    for f in files:
        shutil.copy2(f, folder / f.name)

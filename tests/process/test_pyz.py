"""The single-file supervisor (``python3 -m supervisor.build_pyz``) in a fresh virtual environment.

The archive is built once per session (psutil and tenacity wheels from PyPI; the tests skip
with the reason when the download fails). Every run uses a venv without the package, psutil or
tenacity, with PYTHONPATH unset, so only the archive can provide them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support.helpers import ROOT, VICTIM
from support.selfckpt import RUN_OPTIONS, victim_args

BUILD_TIMEOUT = 240


@pytest.fixture(scope="session")
def pyz(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "ckpt-supervisor.pyz"
    wheels = os.environ.get("CKPT_TEST_WHEELS") or str(tmp_path_factory.mktemp("wheels"))
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor.build_pyz", "-o", str(out), "--wheels", wheels],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0 and "download failed" in proc.stderr:
        pytest.skip(
            f"cannot download the wheels (no network to PyPI?): {proc.stderr.strip()[-300:]}"
        )
    assert proc.returncode == 0, proc.stderr
    return out


def _interpreters() -> list[str]:
    """This Python, and a CPython 3.9 if one is installed (the oldest supported)."""
    found = [sys.executable]
    for candidate in (
        shutil.which("python3.9"),
        "/root/.pyenv/versions/3.9.18/bin/python3",
        "/usr/bin/python3.9",
    ):
        if candidate and os.path.exists(candidate):
            ok = (
                subprocess.run(
                    [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 9)"],
                    capture_output=True,
                    timeout=30,
                    check=False,
                ).returncode
                == 0
            )
            if ok:
                found.append(candidate)
                break
    return found


INTERPRETERS = _interpreters()


@pytest.fixture(
    scope="session", params=INTERPRETERS, ids=["this-python", "python3.9"][: len(INTERPRETERS)]
)
def venv_python(request, tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("venv")
    subprocess.run(
        [request.param, "-m", "venv", "--without-pip", str(base / "v")], check=True, timeout=120
    )
    python = str(base / "v" / "bin" / "python")
    probe = subprocess.run(
        [python, "-c", "import psutil"],
        env=clean_env(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert probe.returncode != 0, "the fresh venv must not have psutil"
    return python


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("CKPT_")}
    env.update(extra)
    return env


def test_archive_layout(pyz):
    """Rule: the archive is a zipapp with a #!/usr/bin/env python3 line, a __main__, the package,
    tenacity, and a psutil with its C extension; it is executable."""
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(pyz, os.X_OK)
    with zipfile.ZipFile(pyz) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("_ckpt_pyz.json"))
    assert "__main__.py" in names
    assert any(n.endswith("supervisor/__main__.py") for n in names)
    assert any(n.endswith("tenacity/__init__.py") for n in names)
    assert any(n.endswith(".so") and "psutil" in n for n in names)
    assert not any(n.endswith("build_pyz.py") for n in names)
    assert manifest["native"] and manifest["build_id"]


def test_checkpointed_job_in_a_fresh_venv(pyz, venv_python, tmp_path):
    """Rule: with only the .pyz (no package, psutil or tenacity installed, no PYTHONPATH), a
    program that exits 77 after each checkpoint is committed (85), restored, and finishes (0)."""
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    cache = tmp_path / "cache"
    args = ["run", *RUN_OPTIONS, "--", venv_python, str(VICTIM), *victim_args(25, 0.01)]
    statuses = []
    for _ in range(5):
        proc = subprocess.run(
            [venv_python, str(pyz), *args],
            cwd=str(sandbox),
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(CKPT_PYZ_CACHE=str(cache)),
            check=False,
        )
        statuses.append(proc.returncode)
        if proc.returncode != 85:
            break
    assert statuses == [85, 85, 0], proc.stderr
    assert (sandbox / "result.dat").read_text() == "25\n"
    assert (sandbox / "checkpoint.atomic").is_dir()
    [extracted] = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert (extracted / ".complete").is_file()


def test_cache_in_the_sandbox_and_reused(pyz, venv_python, tmp_path):
    """Rule: under HTCondor the cache goes to $_CONDOR_SCRATCH_DIR/.ckpt-supervisor-pyz; a second
    start reuses it; a damaged copy (a file of the wrong size) is replaced."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = clean_env(_CONDOR_SCRATCH_DIR=str(scratch), HOME=str(tmp_path / "home"))

    def version() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv_python, str(pyz), "--version"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    assert version().returncode == 0
    [copy] = list((scratch / ".ckpt-supervisor-pyz").iterdir())
    marker = copy / ".complete"
    stamp = marker.stat().st_mtime_ns
    assert version().returncode == 0
    assert marker.stat().st_mtime_ns == stamp  # reused, not extracted again
    victim = next(copy.rglob("psutil/__init__.py"))
    victim.write_text("raise ImportError('damaged')\n")
    proc = version()
    assert proc.returncode == 0, proc.stderr
    assert "damaged" not in next(copy.rglob("psutil/__init__.py")).read_text()
    assert not (tmp_path / "home").exists()


def test_concurrent_first_starts(pyz, venv_python, tmp_path):
    """Rule: eight simultaneous first starts on one cache all succeed and leave one complete
    copy and no temporary directory."""
    cache = tmp_path / "cache"
    env = clean_env(CKPT_PYZ_CACHE=str(cache))
    procs = [
        subprocess.Popen(
            [venv_python, str(pyz), "--version"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(8)
    ]
    try:
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), results
    assert [p.name for p in cache.iterdir()] == [next(cache.iterdir()).name]
    assert not any(p.name.startswith(".extract-") for p in cache.iterdir())


def test_snippet_job_under_the_dry_run(pyz, venv_python, tmp_path):
    """Rule: a submit file made by submit-snippet (executable = ckpt-supervisor.pyz) runs under
    the dry run with the venv's python3 first on PATH, through an eviction, to exit 0."""
    job = tmp_path / "job"
    job.mkdir()
    shutil.copy2(pyz, job / "ckpt-supervisor.pyz")
    shutil.copy2(VICTIM, job / "victim.py")
    python3 = Path(venv_python).with_name("python3")
    if not python3.exists():
        python3.symlink_to(Path(venv_python).name)
    program = ["victim.py", *victim_args(30, 0.05)]
    snip = subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor",
            "submit-snippet",
            *RUN_OPTIONS,
            "--input",
            "victim.py",
            "--",
            "python3",
            *program,
        ],
        cwd=str(job),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env=clean_env(PYTHONPATH=str(ROOT)),
    )
    (job / "job.submit").write_text(
        snip.stdout + "output = job.out\nerror = job.err\nlog = job.log\nqueue\n"
    )
    check = subprocess.run(
        [sys.executable, "-m", "supervisor", "check", "job.submit"],
        cwd=str(job),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=clean_env(PYTHONPATH=str(ROOT)),
    )
    assert check.returncode == 0, check.stdout
    env = clean_env(
        PATH=f"{Path(venv_python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "dry-run", "job.submit", "--evict-at", "1.0"],
        cwd=str(job),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    assert proc.returncode == 0, out + err
    assert (job / "result.dat").read_text() == "30\n"
    assert "Job was evicted" in (job / "job.log").read_text()


def test_warm_start_uses_bytecode_without_extracting(pyz, venv_python, tmp_path):
    """Rule: even where the job's environment sets PYTHONDONTWRITEBYTECODE, the supervisor keeps
    the bytecode of the modules it imported in its extracted copy (so later starts do not compile
    them again), and a warm start finds its copy without opening the archive's manifest or
    importing zipfile."""
    cache = tmp_path / "cache"
    env = clean_env(CKPT_PYZ_CACHE=str(cache), PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([venv_python, str(pyz), "run", "--", "true"], env=env, timeout=120, check=True,
                   capture_output=True)
    [copy] = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert list((copy / "supervisor" / "__pycache__").glob("loop.*.pyc"))
    proc = subprocess.run(
        [venv_python, "-X", "importtime", str(pyz), "run", "--", "true"],
        env=env, timeout=60, check=False, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "supervisor.loop" in imported
    assert not imported & {"zipfile", "json", "shutil", "tempfile", "compileall"}, imported

#!/usr/bin/env python3
"""Start-up of ``ckpt-supervisor run -- /bin/true`` as users install it, against its peers.

    python3 bench/startup_ratio.py [--runs 40] [--before REF] [--work DIR] [--rebuild] [--checkpoint]

Builds (once, into --work, default /tmp/ckpt-bench-startup) a plain ``pip install`` of this
worktree into a fresh venv (the console script) and the single-file ``.pyz``
(``python -m supervisor.build_pyz``); with ``--before REF`` the same two for a git commit, so a
change is measured against its predecessor in the same run. Then every command is started with
``posix_spawn`` and reaped with ``waitpid``, round-robin, ``--runs`` times (after 3 warm-up
rounds), and the script prints a JSON summary: median and p90 in ms, the time over ``/bin/true``
and that figure's ratio to the interpreter's own start (``python -I -c pass`` in the same venv:
the floor no Python program can go below). On a loaded machine read the ratio: the quiet-machine
estimate is ratio x the interpreter's quiet start (11 ms on the reference machine).
With ``--checkpoint`` the console scripts are also measured as ``run --checkpoint ck -- /bin/true``
(the store is imported and opened; ``ck`` exists, no store does, nothing is committed).
The CPU time of each start (user + sys, from wait4; it moves much less with the load than the
wall time) is reported too, with its ratio to the interpreter's. The load average is recorded
before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def _sh(*argv: str, **kw: object) -> None:
    subprocess.run(list(argv), check=True, **kw)  # type: ignore[call-overload]


def prepare(src: Path, dest: Path, rebuild: bool) -> dict[str, Path]:
    """A venv with ``pip install SRC`` and a .pyz built from SRC, under DEST."""
    venv, pyz = dest / "venv", dest / "ckpt-supervisor.pyz"
    if rebuild:
        shutil.rmtree(venv, ignore_errors=True)
        if pyz.exists():
            pyz.unlink()
    if not (venv / "bin" / "ckpt-supervisor").exists():
        _sh(PY, "-m", "venv", str(venv))
        _sh(str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(src))
    if not pyz.exists():
        wheels = dest.parent / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        _sh(PY, "-m", "supervisor.build_pyz", "-o", str(pyz), "--wheels", str(wheels), cwd=str(src))
    return {"venv": venv, "pyz": pyz}


def export(ref: str, dest: Path) -> Path:
    src = dest / "src"
    if not src.exists():
        src.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    return src


def once(argv: list[str], env: dict[str, str], devnull: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children, from wait4)."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env,
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status, usage = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} exited with {os.waitstatus_to_exitcode(status)}")
    return dt, usage.ru_utime + usage.ru_stime


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--before", metavar="REF", help="also measure the install of this git commit")
    ap.add_argument("--work", default="/tmp/ckpt-bench-startup")
    ap.add_argument("--rebuild", action="store_true", help="reinstall this worktree's venv and .pyz")
    ap.add_argument("--checkpoint", action="store_true",
                    help="also time the console scripts with --checkpoint ck (the store imported and opened)")
    a = ap.parse_args()
    work = Path(a.work)
    now = prepare(REPO, work / "now", a.rebuild)
    builds = {"now": now}
    if a.before:
        base = work / f"before-{a.before}"
        builds["before"] = prepare(export(a.before, base), base, False)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CKPT_", "_CONDOR_")) and k not in ("PYTHONPATH",)}
    env["CKPT_PYZ_CACHE"] = str(work / "pyz-cache")
    venv_py = str(now["venv"] / "bin" / "python")
    cmds: dict[str, list[str]] = {"/bin/true": ["/bin/true"]}
    tini = shutil.which("tini")
    if tini:
        cmds["tini"] = [tini, "-s", "--", "/bin/true"]
    cmds["python -I -c pass"] = [venv_py, "-I", "-c", "pass"]
    for tag, b in builds.items():
        cmds[f"console script ({tag})"] = [str(b["venv"] / "bin" / "ckpt-supervisor"), "run", "--", "/bin/true"]
        cmds[f".pyz ({tag})"] = [venv_py, str(b["pyz"]), "run", "--", "/bin/true"]
        if a.checkpoint:
            cmds[f"console script --checkpoint ({tag})"] = [str(b["venv"] / "bin" / "ckpt-supervisor"), "run",
                                                           "--checkpoint", "ck", "--", "/bin/true"]
    samples: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    load = [loadavg()]
    devnull = os.open(os.devnull, os.O_WRONLY)
    cwd = tempfile.mkdtemp(prefix="startup-")
    os.chdir(cwd)
    Path(cwd, "ck").write_text("0\n")
    try:
        for _ in range(3):
            for argv in cmds.values():
                once(argv, env, devnull)
        for _ in range(a.runs):
            for k, argv in cmds.items():
                wall, used = once(argv, env, devnull)
                samples[k].append(wall * 1000)
                cpu[k].append(used * 1000)
    finally:
        os.close(devnull)
        os.chdir("/")
        shutil.rmtree(cwd, ignore_errors=True)
    load.append(loadavg())
    med = {k: statistics.median(v) for k, v in samples.items()}
    floor = med["python -I -c pass"] - med["/bin/true"]
    out = {
        "runs": a.runs, "loadavg_1min": load, "python": sys.version.split()[0],
        "commands": {k: " ".join(v) for k, v in cmds.items()},
        "rows": {
            k: {"median_ms": round(med[k], 2),
                "p90_ms": round(statistics.quantiles(v, n=10)[-1], 2),
                "over_true_ms": round(med[k] - med["/bin/true"], 2),
                "over_true_vs_interpreter": round((med[k] - med["/bin/true"]) / floor, 2),
                "cpu_median_ms": round(statistics.median(cpu[k]), 2),
                "cpu_vs_interpreter": round(statistics.median(cpu[k]) / statistics.median(cpu["python -I -c pass"]), 2)}
            for k, v in samples.items()
        },
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

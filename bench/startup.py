"""1. Start-up: wall time of ``run -- /bin/true`` against the bare program, tini and dumb-init;
and where the supervisor's import time goes (``python -X importtime``).

Each command is started with ``os.posix_spawn`` and reaped with ``os.waitpid`` (no shell, no
subprocess module overhead in the measured span); the variants are interleaved round-robin so
that a slow spell of the machine hits all of them alike.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sysconfig
import time
from typing import Any, Optional

from common import PY, REPO, summary, sup_env

LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _time_once(argv: list[str], env: dict[str, str], devnull: int) -> float:
    t0 = time.perf_counter()
    pid = os.posix_spawn(
        argv[0],
        argv,
        env,
        file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)],
    )
    _, status = os.waitpid(pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} exited with {os.waitstatus_to_exitcode(status)}")
    return dt


def variants(tools: dict[str, Optional[str]]) -> list[tuple[str, list[str], dict[str, str], str]]:
    env = sup_env(installed=False)
    clean = sup_env(installed=False, extra={"PYTHONPATH": os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])})
    out = [
        ("bare", ["/bin/true"], env, "/bin/true alone"),
    ]
    if tools.get("tini"):
        out.append(("tini", [tools["tini"], "-s", "--", "/bin/true"], env, "tini -s -- /bin/true"))
    if tools.get("dumb-init"):
        out.append(("dumb-init", [tools["dumb-init"], "/bin/true"], env, "dumb-init /bin/true"))
    out += [
        ("python-S", [PY, "-S", "-c", "pass"], env, "python -S -c pass: the interpreter alone"),
        ("python", [PY, "-c", "pass"], env, "python -c pass: with this machine's site hooks"),
        (
            "supervisor",
            [PY, "-m", "supervisor", "run", "--", "/bin/true"],
            env,
            "python -m supervisor run -- /bin/true, as installed here",
        ),
        (
            "supervisor-nosite",
            [PY, "-S", "-m", "supervisor", "run", "--", "/bin/true"],
            clean,
            "the same without site .pth hooks (-S, site-packages on PYTHONPATH): a clean machine",
        ),
        (
            "proto-run-only",
            [PY, "-S", str(REPO / "bench" / "programs" / "run_only.py"), "--", "/bin/true"],
            clean,
            "prototype: parser with only `run` (lazy sub-commands), no site hooks",
        ),
    ]
    script = shutil.which("ckpt-supervisor")
    if script:
        out.append(
            (
                "console-script",
                [script, "run", "--", "/bin/true"],
                env,
                "the ckpt-supervisor console script",
            )
        )
    return out


def measure(tools: dict[str, Optional[str]], runs: int, log: Any) -> dict[str, Any]:
    vs = variants(tools)
    samples: dict[str, list[float]] = {name: [] for name, *_ in vs}
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for _ in range(3):  # warm the page cache and the .pyc files
            for _name, argv, env, _d in vs:
                _time_once(argv, env, devnull)
        for _ in range(runs):
            for name, argv, env, _d in vs:
                samples[name].append(_time_once(argv, env, devnull))
    finally:
        os.close(devnull)
    res: dict[str, Any] = {"runs": runs, "variants": {}}
    for name, argv, _env, desc in vs:
        s = summary([x * 1000 for x in samples[name]], 3)  # milliseconds
        res["variants"][name] = {"argv": argv, "description": desc, "ms": s}
    med = {k: v["ms"]["median"] for k, v in res["variants"].items()}
    res["over_bare_ms"] = {k: round(v - med["bare"], 3) for k, v in med.items()}
    log(f"start-up medians (ms): {med}")
    res["importtime"] = importtime(log)
    return res


# ---------------------------------------------------------------------------------- importtime
def _parse(text: str) -> list[tuple[str, int, int, int, Optional[str]]]:
    """[(module, self_us, cumulative_us, level, parent)] in the order importtime prints them."""
    rows: list[tuple[str, int, int, int]] = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            rows.append((m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2))
    out = []
    for i, (name, self_us, cum, level) in enumerate(rows):
        parent = None
        for later in rows[i + 1 :]:  # children are printed before their parent
            if later[3] < level:
                parent = later[0]
                break
        out.append((name, self_us, cum, level, parent))
    return out


def importtime(log: Any, runs: int = 11) -> dict[str, Any]:
    runs_rows = []
    argv = [PY, "-X", "importtime", "-m", "supervisor", "run", "--", "/bin/true"]
    base_rows = []
    for _ in range(runs):
        r = subprocess.run(argv, env=sup_env(installed=False), capture_output=True, text=True, cwd="/")
        runs_rows.append(_parse(r.stderr))
        r = subprocess.run(
            [PY, "-X", "importtime", "-c", "pass"],
            env=sup_env(installed=False),
            capture_output=True,
            text=True,
            cwd="/",
        )
        base_rows.append(_parse(r.stderr))
    cum: dict[str, list[int]] = {}
    selfs: dict[str, list[int]] = {}
    parents: dict[str, Optional[str]] = {}
    levels: dict[str, int] = {}
    for rows in runs_rows:
        for name, s, c, level, parent in rows:
            cum.setdefault(name, []).append(c)
            selfs.setdefault(name, []).append(s)
            parents[name] = parent
            levels[name] = level
    baseline = {name for rows in base_rows for name, *_ in rows}
    med = {n: statistics.median(v) / 1000 for n, v in cum.items()}
    med_self = {n: statistics.median(v) / 1000 for n, v in selfs.items()}
    top = [n for n in med if levels[n] == 0]
    top_level = sorted(
        (
            {
                "module": n,
                "cumulative_ms": round(med[n], 2),
                "self_ms": round(med_self[n], 2),
                "also_in_bare_python": n in baseline,
            }
            for n in top
        ),
        key=lambda d: -d["cumulative_ms"],
    )
    ours = [d for d in top_level if not d["also_in_bare_python"]]
    notable = {}
    for n in (
        "psutil",
        "tenacity",
        "supervisor.condor.dryrun",
        "supervisor.condor.submit",
        "supervisor.jobad",
        "supervisor.condor.eventlog",
        "supervisor.loop",
        "supervisor.core",
        "supervisor.rules",
        "supervisor.config",
        "supervisor.process",
        "supervisor.events",
        "supervisor.store",
        "argparse",
        "subprocess",
        "tempfile",
        "uuid",
        "dataclasses",
        "ctypes",
        "selectors",
        "threading",
        "site",
        "certifi",
    ):
        if n in med:
            notable[n] = {
                "cumulative_ms": round(med[n], 2),
                "self_ms": round(med_self[n], 2),
                "imported_by": parents.get(n) or "(top level)",
            }
        else:
            notable[n] = None
    supervisor_total = round(sum(d["cumulative_ms"] for d in ours), 2)
    log(
        f"importtime: top-level imports beyond bare python {supervisor_total} ms; "
        f"psutil {notable['psutil']}, tenacity {notable['tenacity']}"
    )
    return {
        "runs": runs,
        "note": "medians of -X importtime (which inflates times by roughly 10-30%)",
        "top_level": top_level[:25],
        "beyond_bare_python_ms": supervisor_total,
        "notable": notable,
    }

"""``ckpt-supervisor report EVENTS``: checkpoint cost, time lost to evictions, best interval.

Input: the supervisor's JSON-lines event log (``run --events FILE``; one file collects every
start when its path is outside the sandbox), or an HTCondor job event log (``log =`` in the submit
file, classic format, as condor and the dry run write it). The format is recognised from the
first line.

Theory of operation
-------------------
The log is cut into *runs*, one per start of the job (a supervisor process; an 001 event).
For each run: when it started, when it ended and how (checkpoint exit, eviction, killed without
a word, final exit), and its checkpoints (when committed or uploaded, how long the commit or
upload took, bytes, and the completion latency from the request to a complete checkpoint).

- **Checkpoint cost** ``C`` (seconds): the mean, over checkpoints, of completion latency plus
  commit time (supervisor log) or upload time (HTCondor log, to the second); when the program
  exits at each checkpoint and is started again, the mean restart overhead (start of the run to
  the program's start, restore included) is added, because it is paid once per checkpoint.
  With ``--job-log`` next to a supervisor log, HTCondor's part is added too: the mean time from
  a checkpoint exit to the next run's first event, over restarts in place (no 001 between),
  which is the upload plus the restart. The summary lists what ``C`` includes.
- **Time lost** (one definition, HTCondor's, shared with ``dry-run``'s summary): the work after
  the last checkpoint upload is lost when an execution is interrupted (evicted, killed, held or
  removed) or requeued (a 004 "Job terminated and was requeued": the job's own end while
  ``OnExitRemove`` was false, not counted as an eviction); evictions add nothing to
  ``CommittedTime``, even when an eviction-time commit travels with an ``ON_EXIT_OR_EVICT``
  upload. In a supervisor log a run starts right after the previous checkpoint upload (or at an
  execution's start), so an interrupted run loses everything from its first event to its last; a
  checkpoint exit whose upload never reached the next run (that run restored an older
  checkpoint) is lost the same way. In a job event log: from the last checkpoint upload's end
  (or the 001 event) to the 004/007/009/012 event (an upload in the same second as the 004 is
  taken for the eviction's own upload). A run the soft kill reached (``kill_sent`` or
  ``evicting``) counts as evicted, whatever its exit status.
- **Eviction rate**: ``--mtbf SECONDS`` when given, else observed: time running divided by the
  number of interrupted runs (none observed: the interval is not computed).
- **Optimal interval** between checkpoints, for cost ``C`` and mean time between evictions
  ``M``: Young (1974) ``T = sqrt(2 C M)``; Daly (2006, higher order)
  ``T = sqrt(2 C M) * (1 + sqrt(C / (2 M)) / 3 + (C / (2 M)) / 9) - C`` when ``C < 2 M``, else
  ``T = M``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import PROG, options
from ..errors import ConfigError

YOUNG = "T = sqrt(2*C*M)"
DALY = "T = sqrt(2*C*M) * (1 + sqrt(C/(2*M))/3 + (C/(2*M))/9) - C   (C < 2M; else T = M)"


@dataclass
class Checkpoint:
    time: float  # when it was committed (supervisor) or its upload finished (HTCondor)
    seconds: float  # commit or upload duration
    nbytes: Optional[int] = None
    latency: float = 0.0  # request -> complete checkpoint


@dataclass
class Run:
    start: float
    end: float = 0.0
    how: str = "unknown"  # checkpoint, evicted, killed, finished, failed, held, requeued, running
    status: Optional[int] = None
    program_start: Optional[float] = None
    resumed: bool = False
    restored_sequence: Optional[int] = None
    checkpoints: list[Checkpoint] = field(default_factory=list)
    lost: float = 0.0

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


# --- readers ----------------------------------------------------------------------------------


def read_supervisor_events(lines: list[str], *, checkpoint_code: int) -> list[Run]:
    """Runs from a supervisor event log. A run is the events of one supervisor process (the
    ``pid`` of the record; ``started`` carries the program's pid in that field, so it joins the
    run it follows)."""
    runs: list[Run] = []
    owner: Optional[int] = None
    latency = 0.0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            kind = rec["event"]
            t = float(rec["time"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"line {number}: not an event of the supervisor's log ({exc})"
            ) from None
        pid = rec.get("pid")
        if not runs or (kind != "started" and pid != owner):
            # the process's start (first record), so that the interpreter's start-up counts
            runs.append(Run(start=min(t, float(rec.get("process_start") or t)), how="running"))
            owner = pid
        run = runs[-1]
        run.end = max(run.end, t)
        if kind == "restored":
            run.restored_sequence = int(rec.get("sequence", 0))
        elif kind == "started":
            run.program_start = t if run.program_start is None else run.program_start
            run.resumed = run.resumed or bool(rec.get("resumed"))
        elif kind == "checkpoint_complete":
            latency = float(rec.get("latency") or 0.0)
        elif kind == "committed":
            run.checkpoints.append(
                Checkpoint(t, float(rec.get("seconds") or 0.0), rec.get("bytes"), latency)
            )
            latency = 0.0
        elif kind in ("evicting", "kill_sent"):
            run.how = "evicted"  # the soft kill reached it: an eviction, whatever its status
        elif kind == "exit":
            status = rec.get("status")
            run.status = status
            if run.how == "evicted":
                continue
            if status == checkpoint_code or "checkpoint committed" in str(rec.get("reason", "")):
                run.how = "checkpoint"
            elif status == 0:
                run.how = "finished"
            else:
                run.how = "failed"
    for i, run in enumerate(runs):
        if run.how == "running":
            # no exit recorded: killed (SIGKILL, crash) unless it is the last run, still going
            run.how = "killed" if i < len(runs) - 1 else "running"
    _losses_from_sequences(runs)
    return runs


def _losses_from_sequences(runs: list[Run]) -> None:
    """Lost work (HTCondor's definition: after the last checkpoint upload) of interrupted runs.

    A run starts right after a checkpoint upload or at an execution's start, so an interrupted
    run loses all of its time; its own commits (an eviction-time commit) do not count. A
    checkpoint exit whose commits the next run did not restore (the upload never happened) is
    lost the same way."""
    sequence = 0
    for i, run in enumerate(runs):
        if run.restored_sequence is not None:
            sequence = run.restored_sequence
        first_seq = sequence  # the sequence this run started from
        sequence += len(run.checkpoints)
        nxt = runs[i + 1] if i + 1 < len(runs) else None
        kept_seq = sequence  # without a later restore: every commit of this run is kept
        if nxt is not None and nxt.restored_sequence is not None:
            kept_seq = nxt.restored_sequence
        sequence = min(sequence, kept_seq)  # later commits of this run never reached the next start
        if run.how in ("evicted", "killed"):
            run.lost = run.duration
        elif run.how == "checkpoint" and kept_seq < first_seq + len(run.checkpoints):
            run.lost = run.duration
            run.how = "evicted"  # its checkpoint exit was not uploaded: an eviction hit it


# Events that say nothing about how a run ends (image size, remote error, disconnection,
# reconnection, attribute update): skipped when deciding whether an upload was a checkpoint.
_INFORMATIONAL = frozenset({6, 21, 22, 23, 28})

_HEADER = re.compile(r"^(\d{3}) \((\d+)\.(\d+)\.(\d+)\) (\S+ \S+) (.*)$")


def _parse_stamp(text: str) -> float:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%m/%d %H:%M:%S"):
        try:
            parsed = time.strptime(text, fmt)
        except ValueError:
            continue
        if fmt.startswith("%m"):
            parsed = time.strptime(f"{time.localtime().tm_year}/{text}", "%Y/%m/%d %H:%M:%S")
        return time.mktime(parsed)
    raise ConfigError(f"{text!r} is not a job event log time stamp")


def read_job_event_log(lines: list[str]) -> list[Run]:
    """Runs from an HTCondor classic job event log (first job in it)."""
    events: list[tuple[int, float, str, list[str]]] = []
    job: Optional[tuple[str, str]] = None
    current: Optional[list[str]] = None
    for line in lines:
        m = _HEADER.match(line)
        if m:
            if job is None:
                job = (m.group(2), m.group(3))
            current = [] if (m.group(2), m.group(3)) == job else None
            if current is not None:
                events.append(
                    (int(m.group(1)), _parse_stamp(m.group(5)), m.group(6).strip(), current)
                )
        elif line.strip() == "...":
            current = None
        elif current is not None:
            current.append(line.strip())
    runs: list[Run] = []
    started: Optional[float] = None
    for i, (code, t, text, body) in enumerate(events):
        run = runs[-1] if runs and runs[-1].how == "running" else None
        if code == 1:
            if run is not None:
                run.how, run.end = "killed", t
            runs.append(Run(start=t, how="running", program_start=t, resumed=bool(runs)))
        elif run is None:
            continue
        elif code == 40 and text.startswith("Started transferring output"):
            started = t
        elif code == 40 and text.startswith("Finished transferring output"):
            nxt = next((e for e in events[i + 1:] if e[0] not in _INFORMATIONAL), None)
            # The upload an eviction (ON_EXIT_OR_EVICT) or the final exit makes is written just
            # before its 004/005 (the same second); a checkpoint upload is followed by a restart
            # in place, which writes no event, so a later 004 does not make it an eviction's.
            ends_run = nxt is not None and nxt[0] in (4, 5, 7, 9, 12) and nxt[1] - t < 1.0
            if not ends_run and started is not None:  # an upload at a checkpoint
                run.checkpoints.append(Checkpoint(t, t - started))
            started = None
        elif code == 4 and body and "Job terminated and was requeued" in body[0]:
            # the job's own end while OnExitRemove was false (max_retries ...): not an
            # eviction, but the next execution restarts from the last checkpoint upload
            run.end, run.how, run.status = t, "requeued", _return_value(body)
        elif code in (4, 7, 9, 12):
            run.end = t
            run.how = {4: "evicted", 7: "killed", 9: "removed", 12: "held"}[code]
        elif code == 5:
            run.end, run.status = t, _return_value(body)
            run.how = "finished" if run.status == 0 else "failed"
        if run is not None and code != 1:
            run.end = max(run.end, t)
    for run in runs:
        if run.how in ("evicted", "killed", "held", "removed", "requeued"):
            kept = run.checkpoints[-1].time if run.checkpoints else run.start
            run.lost = max(0.0, run.end - kept)
    return runs


def _return_value(body: list[str]) -> Optional[int]:
    """The exit code a 005 (or a requeue's 004) names; None for a signal."""
    m = re.search(r"return value (\d+)", " ".join(body))
    return int(m.group(1)) if m else None


# --- the summary ------------------------------------------------------------------------------


def young(c: float, m: float) -> float:
    return math.sqrt(2 * c * m)


def daly(c: float, m: float) -> float:
    if c >= 2 * m:
        return m
    r = c / (2 * m)
    return math.sqrt(2 * c * m) * (1 + math.sqrt(r) / 3 + r / 9) - c


def _mean(values: list[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def htcondor_restarts(runs: list[Run], execution_starts: list[float]) -> list[float]:
    """HTCondor's part of a checkpoint's cost, from a supervisor log and the job's event log:
    the seconds from each checkpoint exit to the next run's first event (the upload, then the
    restart in place), leaving out restarts on a new machine (a 001 event in between; the job
    log counts whole seconds)."""
    gaps = []
    for run, nxt in zip(runs, runs[1:]):
        if run.how != "checkpoint":
            continue
        if any(run.end - 1.0 < t <= nxt.start + 1.0 for t in execution_starts):
            continue
        gaps.append(max(0.0, nxt.start - run.end))
    return gaps


def summarise(
    runs: list[Run],
    *,
    mtbf: Optional[float] = None,
    source: str = "supervisor",
    htcondor_gaps: Optional[list[float]] = None,
) -> dict[str, Any]:
    ckpts = [c for r in runs for c in r.checkpoints]
    interrupted = [r for r in runs if r.how in ("evicted", "killed")]
    running = sum(r.duration for r in runs)
    commit = _mean([c.seconds for c in ckpts])
    latency = _mean([c.latency for c in ckpts])
    restarts = [
        r.program_start - r.start for r in runs if r.resumed and r.program_start is not None
    ]
    restart = _mean(restarts) if source == "supervisor" else None
    exits_at_checkpoint = sum(r.how == "checkpoint" for r in runs)
    cost: Optional[float] = None
    includes: list[str] = []
    excludes: list[str] = []
    htcondor = _mean(htcondor_gaps or [])
    if commit is not None:
        cost = commit + (latency or 0.0)
        if source == "supervisor":
            includes = ["completion latency", "commit"]
        else:
            includes = ["checkpoint upload (whole seconds)"]
            excludes = ["the restart in place (not in the job event log)"]
        if exits_at_checkpoint and restart is not None:
            cost += restart
            includes.append("restart overhead (restore)")
        if source == "supervisor":
            if htcondor is not None:
                cost += htcondor
                includes.append("HTCondor's upload and restart (from the job log)")
            elif htcondor_gaps is not None:
                excludes = ["HTCondor's upload and restart (no restart in place in the job log)"]
            else:
                excludes = ["HTCondor's upload and restart (give --job-log JOBLOG)"]
    gaps = []
    for r in runs:
        t0 = r.program_start or r.start
        for c in r.checkpoints:
            gaps.append(c.time - t0)
            t0 = c.time
    observed_mtbf = running / len(interrupted) if interrupted else None
    m = mtbf if mtbf is not None else observed_mtbf
    out: dict[str, Any] = {
        "source": source,
        "runs": len(runs),
        "ends": {k: sum(r.how == k for r in runs) for k in sorted({r.how for r in runs})},
        "checkpoints": len(ckpts),
        "bytes_last": ckpts[-1].nbytes if ckpts else None,
        "commit_seconds_mean": commit,
        "commit_seconds_max": max((c.seconds for c in ckpts), default=None),
        "latency_mean": latency,
        "restart_overhead_mean": restart,
        "checkpoint_cost": cost,
        "cost_includes": includes,
        "cost_excludes": excludes,
        "htcondor_restart_mean": htcondor,
        "interval_observed_mean": _mean(gaps),
        "time_running": running,
        "interruptions": len(interrupted),
        "time_lost": sum(r.lost for r in runs),
        "mtbf": m,
        "mtbf_source": "given" if mtbf is not None else ("observed" if m is not None else None),
        "young": young(cost, m) if cost and m else None,
        "daly": daly(cost, m) if cost and m else None,
        "young_formula": YOUNG,
        "daly_formula": DALY,
    }
    return out


def _fmt(value: Optional[float], unit: str = "s") -> str:
    if value is None:
        return "-"
    if unit == "s" and value >= 120:
        return f"{value:.0f} s ({value / 60:.1f} min)"
    return f"{value:.3f} {unit}" if value < 10 else f"{value:.1f} {unit}"


def format_summary(s: dict[str, Any], path: str) -> str:
    ends = ", ".join(f"{n} {k}" for k, n in s["ends"].items())
    lines = [
        f"{path}: {s['runs']} run(s) ({ends}) from the {s['source']} log",
        f"checkpoints: {s['checkpoints']}"
        + (f", last {s['bytes_last']} bytes" if s["bytes_last"] is not None else ""),
        f"  {'commit' if s['source'] == 'supervisor' else 'upload'} time: mean "
        f"{_fmt(s['commit_seconds_mean'])}, "
        f"max {_fmt(s['commit_seconds_max'])}",
    ]
    if s["source"] == "supervisor":
        lines.append(f"  completion latency (request -> complete): mean {_fmt(s['latency_mean'])}")
        lines.append(
            "  restart overhead (start -> program running): mean "
            f"{_fmt(s['restart_overhead_mean'])}"
        )
    if s.get("htcondor_restart_mean") is not None:
        lines.append(
            "  HTCondor's upload and restart (checkpoint exit -> next run): mean "
            f"{_fmt(s['htcondor_restart_mean'])}"
        )
    cost_line = f"  cost per checkpoint C: {_fmt(s['checkpoint_cost'])}"
    if s.get("cost_includes"):
        cost_line += " = " + " + ".join(s["cost_includes"])
    lines.append(cost_line)
    if s.get("cost_excludes"):
        lines.append("    not included: " + "; ".join(s["cost_excludes"]))
    lines += [
        f"  observed interval between checkpoints: mean {_fmt(s['interval_observed_mean'])}",
        f"time running: {_fmt(s['time_running'])}; interruptions (evicted or killed): "
        f"{s['interruptions']}; "
        f"time lost (after the last checkpoint upload): {_fmt(s['time_lost'])}",
    ]
    if s["mtbf"] is None:
        lines.append("mean time between evictions M: unknown (none observed); give --mtbf SECONDS")
    else:
        lines.append(f"mean time between evictions M: {_fmt(s['mtbf'])} ({s['mtbf_source']})")
    if not s["checkpoint_cost"]:
        lines.append(
            "optimal interval: not computed, the checkpoint cost C is unknown or below the log's "
            "resolution (HTCondor logs count whole seconds; the supervisor's --events log has it)"
        )
        return "\n".join(lines)
    if s["mtbf"] is None:
        lines.append("optimal interval: not computed without M")
        return "\n".join(lines)
    lines.append("optimal interval between checkpoints, for C and M:")
    lines.append(f"  Young: {s['young_formula']} = {_fmt(s['young'])}")
    lines.append(f"  Daly:  {s['daly_formula']} = {_fmt(s['daly'])}")
    if s["young"] is not None:
        lines.append(
            f"  e.g. ckpt-supervisor run --every {max(1, round(s['daly'] or s['young']))} ..."
        )
    return "\n".join(lines)


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(errors="replace").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from exc


def report(
    path: str,
    *,
    mtbf: Optional[float] = None,
    checkpoint_code: int = 85,
    job_log: Optional[str] = None,
) -> dict[str, Any]:
    lines = _read_lines(path)
    first = next((ln for ln in lines if ln.strip()), "")
    if first.lstrip().startswith("{"):
        runs = read_supervisor_events(lines, checkpoint_code=checkpoint_code)
        source = "supervisor"
    elif _HEADER.match(first):
        runs = read_job_event_log(lines)
        source = "HTCondor job event"
    else:
        raise ConfigError(
            f"{path}: neither a supervisor event log (JSON lines) nor an HTCondor job event log"
        )
    if not runs:
        raise ConfigError(f"{path}: no run of the job in it")
    gaps: Optional[list[float]] = None
    if job_log is not None:
        if source != "supervisor":
            raise ConfigError(
                f"--job-log goes with a supervisor event log; {path} is a job event log already"
            )
        jl_lines = _read_lines(job_log)
        jl_first = next((ln for ln in jl_lines if ln.strip()), "")
        if not _HEADER.match(jl_first):
            raise ConfigError(f"{job_log}: not an HTCondor job event log (--job-log)")
        gaps = htcondor_restarts(runs, [r.start for r in read_job_event_log(jl_lines)])
    return summarise(runs, mtbf=mtbf, source=source, htcondor_gaps=gaps)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="summarise an event log: checkpoints, their cost, time lost, best interval",
        usage=f"{PROG} report [--mtbf SECONDS] [--job-log JOBLOG] [--json] EVENTS",
        description="Summarise a supervisor event log (run --events FILE) or an HTCondor job event "
        "log: checkpoints and their cost, time lost to evictions, and the checkpoint interval that "
        "minimises lost time by Young's and Daly's formulas. See docs/reference/report.md.",
    )
    p.add_argument("events", metavar="EVENTS", help="a supervisor --events file or a job event log")
    options.add_arguments(p, options.REPORT, convert_now=True)
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    if args.mtbf is not None and not (args.mtbf > 0 and math.isfinite(args.mtbf)):
        raise ConfigError("--mtbf: give a number of seconds greater than 0")
    summary = report(
        args.events, mtbf=args.mtbf, checkpoint_code=args.exit_code, job_log=args.job_log
    )
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=1) + "\n")
    else:
        sys.stdout.write(format_summary(summary, args.events) + "\n")
    return 0

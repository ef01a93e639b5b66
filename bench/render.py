#!/usr/bin/env python3
"""Render docs/performance.md from a results file of bench/run.py.

    python3 bench/render.py [bench/results/latest.json] [--out docs/performance.md]

The tables, target verdicts and the machine come from the JSON; the hand-written analysis (what
was changed or is proposed for each missed target) comes from bench/analysis.md, included as is.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def f(x: Any, digits: int = 1, unit: str = "") -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}{unit}"
    return f"{x}{unit}"


def ratio(a: Optional[float], b: Optional[float], digits: int = 1) -> str:
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.{digits}f}×"


def verdict(ok: Optional[bool]) -> str:
    return "–" if ok is None else ("**met**" if ok else "**missed**")


def get(d: Any, *keys: Any) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def render(r: dict[str, Any]) -> tuple[str, list[tuple[str, str, str, Optional[bool]]]]:
    out: list[str] = []
    targets: list[tuple[str, str, str, Optional[bool]]] = []  # (what, target, measured, ok)
    m = r.get("machine", {})
    tools = r.get("tools", {})
    have_tini, have_dumb = bool(tools.get("tini")), bool(tools.get("dumb-init"))
    w = out.append

    # ------------------------------------------------------------------ 1 start-up
    s = r.get("startup", {})
    v = s.get("variants", {})
    if v:
        bare = get(v, "bare", "ms", "median")
        w("## 1. Start-up\n")
        w(
            f"Median of {s.get('runs')} runs each, interleaved; wall time from `posix_spawn` to `waitpid`.\n"
        )
        w(
            "| command | median ms | p90 ms | over `/bin/true` ms | ratio to tini | ratio to dumb-init |"
        )
        w("|---|---:|---:|---:|---:|---:|")
        tini = get(v, "tini", "ms", "median")
        dumb = get(v, "dumb-init", "ms", "median")
        for d in v.values():
            med = d["ms"]["median"]
            w(
                f"| {d['description']} | {f(med, 2)} | {f(d['ms']['p90'], 2)} | {f(med - bare, 2)} | "
                f"{ratio(med, tini) if have_tini else 'n/a'} | {ratio(med, dumb) if have_dumb else 'n/a'} |"
            )
        w("")
        sup = get(v, "supervisor", "ms", "median")
        clean = get(v, "supervisor-nosite", "ms", "median")
        proto = get(v, "proto-run-only", "ms", "median")
        if sup is not None:
            targets.append(
                (
                    "1. start-up over the bare program (as installed here)",
                    "≤ 30 ms",
                    f"{sup - bare:.1f} ms",
                    sup - bare <= 30,
                )
            )
        if clean is not None:
            targets.append(
                (
                    "1. start-up over the bare program (no site hooks: a clean machine)",
                    "≤ 30 ms",
                    f"{clean - bare:.1f} ms",
                    clean - bare <= 30,
                )
            )
        if proto is not None:
            targets.append(
                (
                    "1. … with the proposed lazy sub-commands (prototype, clean machine)",
                    "≤ 30 ms",
                    f"{proto - bare:.1f} ms",
                    proto - bare <= 30,
                )
            )
        it = s.get("importtime", {})
        if it:
            w(
                f"Import time (`python -X importtime -m supervisor run -- /bin/true`, median of {it.get('runs')} "
                "runs; importtime itself inflates the figures):\n"
            )
            w("| module | cumulative ms | self ms | imported by |")
            w("|---|---:|---:|---|")
            for name, d in it.get("notable", {}).items():
                if d is None:
                    w(f"| `{name}` | not imported | | |")
                else:
                    w(
                        f"| `{name}` | {f(d['cumulative_ms'], 2)} | {f(d['self_ms'], 2)} | `{d['imported_by']}` |"
                    )
            w("")
            w(
                f"Top-level imports that a bare `python -c pass` does not make add up to "
                f"{f(it.get('beyond_bare_python_ms'), 1)} ms under importtime.\n"
            )

    # ------------------------------------------------------------------ 2 signals
    sg = r.get("signals", {})
    res = sg.get("results", {})
    if res:
        w("## 2. Signal pass-on latency\n")
        w(
            f"{sg.get('signals')} × {sg.get('signal')}, {sg.get('gap_us')} µs apart; from `kill()` on the wrapper "
            "to the program's handler reading CLOCK_MONOTONIC (C sender and C handler). `direct` signals the "
            "program itself: the floor.\n"
        )
        w(
            "| wrapper | median µs | p99 µs | max µs | median ratio to tini | median ratio to dumb-init |"
        )
        w("|---|---:|---:|---:|---:|---:|")
        t_med = get(res, "tini", "us", "median")
        d_med = get(res, "dumb-init", "us", "median")
        for name, d in res.items():
            if "error" in d:
                w(f"| {name} | error: {d['error']} | | | | |")
                continue
            u = d["us"]
            w(
                f"| {name} | {f(u['median'], 1)} | {f(u['p99'], 1)} | {f(u['max'], 1)} | "
                f"{ratio(u['median'], t_med) if have_tini else 'n/a'} | "
                f"{ratio(u['median'], d_med) if have_dumb else 'n/a'} |"
            )
        w("")
        sup = get(res, "supervisor", "us")
        if sup and t_med:
            targets.append(
                (
                    "2. signal latency median vs tini",
                    "≤ 2× tini",
                    f"{sup['median'] / t_med:.1f}× ({sup['median']:.0f} vs {t_med:.0f} µs)",
                    sup["median"] <= 2 * t_med,
                )
            )
        if sup:
            targets.append(
                ("2. signal latency p99", "≤ 1 ms", f"{sup['p99']:.0f} µs", sup["p99"] <= 1000)
            )
        sw = get(res, "supervisor-watch", "us")
        if sw:
            targets.append(
                (
                    "2. signal latency p99, --watch mode",
                    "≤ 1 ms",
                    f"{sw['p99']:.0f} µs",
                    sw["p99"] <= 1000,
                )
            )

    # ------------------------------------------------------------------ 3 idle + 6 memory
    idle = r.get("idle", {})
    res = idle.get("results", {})
    if res:
        w("## 3. Idle cost and 6. memory\n")
        ext = " (extrapolated to one hour)" if idle.get("extrapolated") else ""
        w(
            f"All side by side over one {f(idle.get('window_measured_s'), 0)} s window{ext}, after "
            f"{idle.get('settle_s')} s of settling (start-up excluded). CPU from /proc/PID/task/*/schedstat; "
            "peak RSS is VmHWM.\n"
        )
        w("| wrapper | what | CPU s per hour | VmHWM MB | RSS MB | PSS MB | threads |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for name, d in res.items():
            if "error" in d:
                w(f"| {name} | {d.get('description')} | error: {d['error']} | | | | |")
                continue
            w(
                f"| {name} | {d['description']} | {f(d['cpu_s_per_hour'], 3)} | {f(d['vm_hwm_kb'] / 1024, 1)} | "
                f"{f(d['vm_rss_kb'] / 1024, 1)} | {f((d['pss_kb'] or 0) / 1024, 1)} | {d['threads']} |"
            )
        w("")
        watch_max = max(
            (
                d["cpu_s_per_hour"]
                for n, d in res.items()
                if n.startswith("watch") and "error" not in d and n != "watch-polling"
            ),
            default=None,
        )
        if watch_max is not None:
            targets.append(
                (
                    "3. idle CPU with --watch (inotify)",
                    "≤ 2 s/h",
                    f"{watch_max:.2f} s/h (worst rule)",
                    watch_max <= 2,
                )
            )
        plain = get(res, "supervisor", "cpu_s_per_hour")
        if plain is not None:
            targets.append(("3. idle CPU without --watch", "≈ 0", f"{plain:.3f} s/h", plain <= 0.1))
        hwm = [
            d["vm_hwm_kb"]
            for n, d in res.items()
            if "error" not in d and not n.startswith(("tini", "dumb"))
        ]
        cli = get(r, "store", "sizes")
        extra = []
        if cli:
            for key, d in cli.items():
                c = d.get("cli") or {}
                if c.get("peak_rss_kb"):
                    extra.append((f"commit of {key} through the CLI", c["peak_rss_kb"]))
                if c.get("restart_peak_rss_kb"):
                    extra.append((f"restart restoring {key}", c["restart_peak_rss_kb"]))
        sc = r.get("scale", {})
        if get(sc, "peak_rss_mb_each", "max"):
            extra.append(
                (
                    "scale run, trigger + commit + exit (max of all)",
                    sc["peak_rss_mb_each"]["max"] * 1024,
                )
            )
        if extra:
            w(
                "Peak RSS while committing and restoring (VmHWM polled every 5–20 ms until the supervisor exited):\n"
            )
            w("| scenario | peak RSS MB |")
            w("|---|---:|")
            for what, kb in extra:
                w(f"| {what} | {kb / 1024:.1f} |")
            w("")
        allpeaks = hwm + [kb for _w, kb in extra]
        if allpeaks:
            targets.append(
                (
                    "6. peak RSS of the supervisor",
                    "≤ 30 MB",
                    f"{max(allpeaks) / 1024:.1f} MB (worst case)",
                    max(allpeaks) / 1024 <= 30,
                )
            )

    # ------------------------------------------------------------------ 4 watch latency
    wl = r.get("watch", {})
    res = wl.get("results", {})
    if res:
        w("## 4. Completion-decision latency in --watch mode\n")
        w(
            f"{wl.get('checkpoints_each')} checkpoints per rule, {wl.get('period_s')} s apart; from just before the "
            "program's deciding call (rename / close / marker write) to the `checkpoint_complete` event that "
            "precedes the commit. *early* counts commits that started after the write began but before the "
            "deciding call (an incomplete checkpoint committed).\n"
        )
        w("| rule | median ms | p99 ms | max ms | samples | early | missed |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        for name, d in res.items():
            if "error" in d:
                w(f"| {name} | error: {d['error']} | | | | | |")
                continue
            ms = d["ms"]
            w(
                f"| {name} | {f(ms.get('median'), 2)} | {f(ms.get('p99'), 2)} | {f(ms.get('max'), 2)} | "
                f"{ms.get('n')} | {d['early']} | {d['missed']} |"
            )
        w("")
        meds = [
            d["ms"]["median"]
            for n, d in res.items()
            if "polling" not in n and "error" not in d and d["ms"].get("n")
        ]
        if meds:
            targets.append(
                (
                    "4. completion-decision latency (inotify), worst rule's median",
                    "≤ 20 ms",
                    f"{max(meds):.1f} ms",
                    max(meds) <= 20,
                )
            )
        early = sum(d.get("early", 0) for d in res.values() if "error" not in d)
        targets.append(
            (
                "4. (correctness) no commit before the deciding call",
                "0 early",
                f"{early} early",
                early == 0,
            )
        )

    # ------------------------------------------------------------------ 5 store
    st = r.get("store", {})
    sizes = st.get("sizes", {})
    if sizes:
        w("## 5. Commit and restore\n")
        w(
            "Medians; throughput in GiB/s. `cp+fsync` is `cp --reflink=auto -r` followed by an fsync of every "
            "copied file and directory: the durable equivalent of a commit. Ratios > 1 mean faster than cp.\n"
        )
        w(
            "| set | fs | reps | cp s | cp+fsync s | commit s | restore s | rename s | commit(move) s | "
            "commit vs cp | commit vs cp+fsync | restore vs cp | restore vs cp+fsync | method |"
        )
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for key, d in sizes.items():
            if "error" in d:
                w(f"| {key} | error: {d['error']} |" + " |" * 13)
                continue
            sec = {k: v["median"] for k, v in d["seconds"].items()}
            ra = d["ratios"]
            w(
                f"| {key} | {d['fs']} | {d['reps']} | {sec['cp']:.3f} | {sec['cp+fsync']:.3f} | {sec['commit']:.3f} | "
                f"{sec['restore']:.3f} | {sec['rename'] * 1000:.2f} ms | {sec['commit-move']:.3f} | "
                f"{ra['commit_vs_cp']:.2f}× | {ra['commit_vs_cp_fsync']:.2f}× | {ra['restore_vs_cp']:.2f}× | "
                f"{ra['restore_vs_cp_fsync']:.2f}× | {d['methods'].get('commit')} |"
            )
            if not key.endswith("tmpfs"):
                targets.append(
                    (
                        f"5. commit throughput vs cp+fsync, {key} on {d['fs']}",
                        "≥ 0.9×",
                        f"{ra['commit_vs_cp_fsync']:.2f}× (vs cp without fsync {ra['commit_vs_cp']:.2f}×)",
                        ra["commit_vs_cp_fsync"] >= 0.9,
                    )
                )
                targets.append(
                    (
                        f"5. restore throughput vs cp+fsync, {key}",
                        "≥ 0.9×",
                        f"{ra['restore_vs_cp_fsync']:.2f}×",
                        ra["restore_vs_cp_fsync"] >= 0.9,
                    )
                )
                targets.append(
                    (
                        f"5. commit when a rename applies (move), {key}",
                        "≤ 10 ms",
                        f"{sec['commit-move'] * 1000:.0f} ms (bare rename {sec['rename'] * 1000:.2f} ms)",
                        sec["commit-move"] <= 0.010,
                    )
                )
        w("")
        for key, d in sizes.items():
            c = d.get("cli")
            if c:
                w(
                    f"Through the CLI ({key}): `committed` event {f(c.get('committed_seconds'), 3)} s, trigger to exit "
                    f"{f(c.get('trigger_to_exit_s'), 3)} s (exit status {c.get('exit_status')}); a restart restored it "
                    f"in {f(c.get('restored_seconds'), 3)} s, program ready {f(c.get('restart_to_program_ready_s'), 3)} s "
                    "after the start.\n"
                )
        for n in st.get("notes", []):
            w(f"Note: {n}\n")

    # ------------------------------------------------------------------ 7 scale
    sc = r.get("scale", {})
    if sc.get("supervisors"):
        w("## 7. Scale\n")
        if "error" in sc:
            w(f"Error: {sc['error']}\n")
        else:
            n = sc["supervisors"]
            tini = sc.get("tini") or {}
            w(
                f"{n} supervisors at once, each with a tiny C program (`--checkpoint ck --trigger-signal SIGUSR1 "
                "--complete-when quiet=0`).\n"
            )
            w("| figure | supervisors | tini -s (same programs) |")
            w("|---|---:|---:|")
            w(f"| time until all {n} programs are up | {sc['all_started_s']} s | |")
            w(
                f"| total RSS | {sc['rss_mb_total']} MB ({sc['rss_mb_each']['median']} MB each) | "
                f"{tini.get('rss_mb_total', 'n/a')} MB |"
            )
            w(
                f"| total PSS (shared pages split fairly) | {sc['pss_mb_total']} MB | {tini.get('pss_mb_total', 'n/a')} MB |"
            )
            w(f"| CPU to start all | {sc['startup_cpu_s_total']} s | |")
            w(f"| idle CPU, all together | {sc['idle_cpu_s_per_hour_total']} s/h | |")
            w(f"| one SIGUSR1 each: sent in | {sc['signals_sent_in_s'] * 1000:.1f} ms | |")
            w(
                f"| … all committed and exited (85) | {sc['all_checkpointed_s']} s (median {sc['checkpointed_s']['median']} s) "
                f"| |"
            )
            w(
                f"| exit 85 / stores committed | {sc['exit_85']}/{n}, {sc['committed_stores']}/{n} | |"
            )
            w(f"| CPU of the checkpoint phase, all | {sc['checkpoint_phase_cpu_s_total']} s | |")
            w(f"| peak RSS each (max) | {sc['peak_rss_mb_each']['max']} MB | |")
            w("")

    # ------------------------------------------------------------------ 8 goodput
    g = r.get("goodput", {})
    if g.get("intervals") or g.get("error"):
        w("## 8. Goodput in the dry run\n")
        if g.get("error"):
            w(f"Error: {g['error']}\n")
        else:
            cal = g["calibration"]
            w(
                f"Job: {g['work_s']} s of work; the program spends {g['cost_s']} s writing each checkpoint; evictions "
                f"at random, exponential with mean {g['mtbf_s']} s (`dry-run --evict-random`), seeds {g['seeds']}. "
                f"Every checkpoint is an exit (85), an upload and a restart. A calibration run without evictions "
                f"gave the effective cost of a checkpoint cycle C_eff = {cal['c_eff_s']} s (restart part "
                f"{cal['restart_cost_s']} s). Young: T_opt = sqrt(2·C_eff·MTBF) = {g['young_t_opt_s']} s "
                f"({g['young_t_opt_nominal_cost_s']} s with the nominal cost). Model: Daly's expectation for "
                "exponential failures with that C_eff and restart cost.\n"
            )
            w(
                "| interval | seconds | goodput (pooled) | model | measured / model | evictions | checkpoints |"
            )
            w("|---|---:|---:|---:|---:|---:|---:|")
            for row in g["intervals"]:
                good = [x for x in row["runs"] if "error" not in x]
                w(
                    f"| {row['factor']}× T_opt | {row['every_s']} | {f(row.get('goodput_pooled'), 3)} | "
                    f"{row['model_goodput']:.3f} | {ratio(row.get('goodput_pooled'), row['model_goodput'], 2)} | "
                    f"{row.get('evictions_total')} | {sum(x['checkpoints'] for x in good)} |"
                )
            w("")
            at = next((x for x in g["intervals"] if x["factor"] == 1.0), None)
            if at and at.get("goodput_pooled"):
                targets.append(
                    (
                        "8. goodput at Young's T_opt vs the model",
                        "report",
                        f"{at['goodput_pooled']:.3f} vs {at['model_goodput']:.3f}",
                        None,
                    )
                )

    head: list[str] = []
    h = head.append
    h("# Performance\n")
    h(
        "<!-- generated by bench/render.py from bench/summary.md, bench/results/latest.json and bench/analysis.md; edit those instead -->\n"
    )
    h(
        f"Figures from `python3 bench/run.py{' --quick' if r.get('mode') == 'quick' else ''}` "
        f"({r.get('mode')} run, {r.get('when')}, commit {r.get('commit')}); rendered by `python3 bench/render.py`.\n"
    )
    h("## Machine\n")
    h(f"- CPU: {m.get('cpu')}, {m.get('cores')} cores; memory {m.get('memory_gib')} GiB")
    h(
        f"- kernel {m.get('kernel')}; {m.get('os')}; Python {m.get('python')} (`{m.get('python_executable')}`), "
        f"psutil {m.get('psutil')}"
    )
    h(
        f"- checkpoint sets in `{m.get('bench_dir')}`: file system **{m.get('bench_dir_fs')}** "
        "(`stat -f -c %T`; ext2/ext3 is the magic ext4 shares: no reflinks)"
    )
    h(
        f"- tini: {m.get('tini') or 'not installed (columns skipped)'}; dumb-init: "
        f"{m.get('dumb_init') or 'not installed (columns skipped)'}"
    )
    for n in r.get("notes", []):
        h(f"- note: {n}")
    h("")
    h("## Targets\n")
    h("| measurement | target | measured | verdict |")
    h("|---|---|---|---|")
    for what, target, measured, ok in targets:
        h(f"| {what} | {target} | {measured} | {verdict(ok)} |")
    h("")
    return "\n".join(head + out), targets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", nargs="?", default=str(HERE / "results" / "latest.json"))
    ap.add_argument("--out", default=str(REPO / "docs" / "performance.md"))
    ap.add_argument("--analysis", default=str(HERE / "analysis.md"))
    ap.add_argument("--summary", default=str(HERE / "summary.md"),
                    help="hand-written section placed first (issue 15: targets against their peers)")
    args = ap.parse_args()
    r = json.loads(Path(args.results).read_text())
    text, _targets = render(r)
    summary = Path(args.summary)
    if summary.exists():
        title = "# Performance\n"
        text = text.replace(title, title + "\n" + summary.read_text() + "\n## The bench/run.py suite (issue 7)\n", 1)
    analysis = Path(args.analysis)
    if analysis.exists():
        text += "\n" + analysis.read_text()
    Path(args.out).write_text(text.rstrip() + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

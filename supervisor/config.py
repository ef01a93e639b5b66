"""Options of ``ckpt-supervisor run``: flags, environment, TOML config file and job ad -> RunConfig.

Precedence, highest first: command-line flag, environment variable (``CKPT_<NAME>``), ``--config``
file (TOML, the same names as the flags, with ``-`` or ``_``), the HTCondor job ad
(``$_CONDOR_JOB_AD``), built-in default. Every option is declared once, as a row of
``supervisor.options.RUN``; the parser, ``--help``, the reference pages, the environment and
config-file readers and ``RunConfig``'s attributes are all made from it. The job ad's checkpoint
attributes are read by ``jobad.checkpoint_defaults`` (through ``condor.attributes``, as the dry
run and ``check`` read them).
"""

from __future__ import annotations

import os

from . import options
from .errors import ConfigError
from .optvalues import ByRow
from .records import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from typing import Any, Optional

ENV_PREFIX = options.RUN_ENV_PREFIX
# the table of run options lives in supervisor/options.py; these names stay for their readers
Option = options.Option
OPTIONS = options.RUN
BY_DEST = options.BY_DEST
add_run_options = options.add_run_options


DEFAULT_KILL_GRACE = 10.0
DEFAULT_VACATE_TIME = 600.0  # HTCondor's MachineMaxVacateTime when the machine ad has none
UPLOAD_SHARE = 0.25  # of the vacate time kept free for HTCondor's eviction upload ...
UPLOAD_RESERVE_MIN, UPLOAD_RESERVE_MAX = 1.0, 60.0  # ... within these bounds (seconds)


@record(frozen=True)
class Timing:
    """The vacate time (soft kill to SIGKILL of everything) and how it is shared out.

    After the vacate time HTCondor SIGKILLs the whole job and uploads nothing (semantics rule 9),
    so the supervisor's grace and any eviction-time checkpoint must end ``upload_reserve``
    seconds before it.
    """

    vacate: float
    source: str  # which ad attributes gave it
    upload_reserve: float
    kill_grace: float
    kill_grace_derived: bool
    promise_budget: float  # a promised checkpoint in flight at the soft kill gets this long

    def describe(self, checkpointing: bool = True) -> str:
        grace = f"kill grace {self.kill_grace:g} s" + (" (derived)" if self.kill_grace_derived else "")
        budget = (f"; a checkpoint HTCondor asked for that is in flight at the soft kill gets "
                  f"{self.promise_budget:g} s" if checkpointing else "")
        return (f"vacate time {self.vacate:g} s ({self.source}): {grace}{budget}; "
                f"{self.upload_reserve:g} s kept for the upload")


def derive_timing(vacate: float, source: str, *, kill_grace: Optional[float],
                  checkpoint_on_evict: Optional[float], where: str = "") -> Timing:
    """Share the vacate time out; ConfigError only for explicit values that cannot fit.

    ``kill_grace`` and ``checkpoint_on_evict`` are the values the user gave (None: not given).
    """
    reserve = min(UPLOAD_RESERVE_MAX, max(UPLOAD_RESERVE_MIN, UPLOAD_SHARE * vacate))
    room = max(vacate - reserve, vacate / 2)  # what the supervisor may use
    evict = checkpoint_on_evict or 0.0
    used = (kill_grace or 0.0) + evict
    if used >= vacate > 0 and (kill_grace or checkpoint_on_evict):  # nothing left for the upload
        given = " plus ".join(f"--{name} {value:g}" for name, value in
                              (("kill-grace", kill_grace), ("checkpoint-on-evict", checkpoint_on_evict))
                              if value is not None)
        verb = "leave" if " plus " in given else "leaves"
        raise ConfigError(f"{given}{where} {verb} nothing of the vacate time {vacate:g} s ({source}): "
                          "HTCondor would SIGKILL everything first and upload nothing; lower them, leave "
                          "them unset to derive them, or raise job_max_vacate_time")
    derived = kill_grace is None
    grace = min(DEFAULT_KILL_GRACE, max(0.0, room - evict) / 2) if derived else float(kill_grace or 0.0)
    budget = checkpoint_on_evict if checkpoint_on_evict is not None else max(0.0, room - grace)
    left = max(0.0, vacate - grace - budget)  # what is left for HTCondor's upload
    return Timing(vacate=vacate, source=source, upload_reserve=round(left, 3), kill_grace=round(grace, 3),
                  kill_grace_derived=derived, promise_budget=round(budget, 3))


def vacate_time(job_ad: dict[str, Any], machine_ad_vacate: Optional[float],
                under_condor: bool) -> Optional[tuple[float, str]]:
    """min(JobMaxVacateTime, MachineMaxVacateTime (default 600)); None outside HTCondor."""
    job = job_ad.get("max_vacate_time")
    job = job if isinstance(job, (int, float)) and job > 0 else None
    machine = machine_ad_vacate if machine_ad_vacate is not None and machine_ad_vacate > 0 else None
    if job is None and machine is None:
        if not under_condor:
            return None
        return DEFAULT_VACATE_TIME, "HTCondor's default MachineMaxVacateTime"
    machine_text = f"MachineMaxVacateTime {machine:g}" if machine is not None else "no MachineMaxVacateTime"
    if machine is None:
        machine = DEFAULT_VACATE_TIME
        machine_text = f"MachineMaxVacateTime {machine:g} by default"
    if job is None:
        return machine, machine_text + ", no JobMaxVacateTime"
    which = "JobMaxVacateTime" if job <= machine else "MachineMaxVacateTime"
    return min(job, machine), f"the smaller of JobMaxVacateTime {job:g} and {machine_text}: {which}"


def unknown_env_warnings(environ: dict[str, str]) -> list[str]:
    """One line for each CKPT_* variable that is no option, naming the nearest known one."""
    known = [o.env for o in options.RUN] + [options.CONFIG_ENV]
    out = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name.startswith(OTHER_ENV_PREFIXES):
            continue
        import difflib  # only for a misspelt setting: it costs ~1 ms at every start

        near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]}?" if near else f"; the known ones are listed by {PROG_RUN} --help"
        out.append(f"environment variable {name} is not a {ENV_PREFIX}* setting and is ignored{hint}")
    return out


PROG_RUN = "ckpt-supervisor run"
# CKPT_* variables that belong to someone else: the dry run's own settings and family marker, and
# test suites
OTHER_ENV_PREFIXES = (ENV_PREFIX + "DRYRUN_", ENV_PREFIX + "TEST_")


@record(frozen=True)
class RunConfig(ByRow):
    """The validated settings of one ``run``: PROGRAM, one value for every row of
    ``options.RUN`` (read as attributes: ``cfg.kill_grace``, by ``optvalues.ByRow``), and what
    was derived from them."""

    program: tuple[str, ...]
    values: dict[str, Any] = field(default_factory=dict)  # option dest -> converted value
    verbosity: int = 0
    job_ad: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # option -> where its value came from
    timing: Optional[Timing] = None  # the vacate time and what fits in it (under HTCondor)
    promise_budget: Optional[float] = None  # evicted with a promised checkpoint in flight
    warnings: tuple[str, ...] = ()  # said once at start (unknown CKPT_* variables, ...)

    @classmethod
    def rows(cls) -> Mapping[str, options.Option]:
        return options.BY_DEST


def read_config_file(path: str) -> dict[str, Any]:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            raise ConfigError(f"--config {path}: reading TOML needs Python 3.11+ or the tomli package "
                              "(pip install tomli)") from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror})") from exc
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"--config {path}: not valid TOML ({exc})") from exc
    if "run" in data and isinstance(data["run"], dict):
        data = {**{k: v for k, v in data.items() if k != "run"}, **data["run"]}
    out: dict[str, Any] = {}
    for key, value in data.items():
        dest = key.replace("-", "_")
        if dest not in options.BY_DEST or not options.BY_DEST[dest].toml:
            raise ConfigError(f"--config {path}: unknown key {key!r}; keys are the flag names, e.g. kill-grace")
        out[dest] = value
    return out


def _from_job_ad(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(option values, raw defaults) from the job ad; empty when there is none."""
    from .jobad import checkpoint_defaults, read_job_ad

    defaults = checkpoint_defaults(read_job_ad(path))
    values: dict[str, Any] = {}
    if defaults.get("exit_by_signal") and defaults.get("exit_signal"):
        values["exit_signal"] = defaults["exit_signal"]
    if defaults.get("exit_code") is not None:
        values["exit_code"] = defaults["exit_code"]
    if defaults.get("want_checkpoint_signal"):
        sig = defaults.get("checkpoint_signal") or defaults.get("kill_signal") or 15
        values["trigger_signal"] = [sig]
    if defaults.get("kill_signal") is not None:
        values["kill_signal"] = defaults["kill_signal"]
    if defaults.get("remove_kill_signal") is not None:
        values["remove_kill_signal"] = defaults["remove_kill_signal"]
    return values, dict(defaults)



def build(args: argparse.Namespace, environ: Optional[dict[str, str]] = None) -> RunConfig:
    """Merge every source into one validated RunConfig; raises ConfigError."""
    environ = dict(os.environ if environ is None else environ)
    program = list(getattr(args, "program", []) or [])
    if program and program[0] == "--":
        program = program[1:]
    if not program:
        raise ConfigError("no PROGRAM given: put it after --, e.g. ckpt-supervisor run -- ./sim --steps 100")

    layers: list[tuple[str, dict[str, Any]]] = []
    job_ad_raw: dict[str, Any] = {}
    ad_path = environ.get("_CONDOR_JOB_AD")
    if ad_path and os.path.isfile(ad_path):
        values, job_ad_raw = _from_job_ad(ad_path)
        layers.append((f"job ad {ad_path}", values))
    config_path = getattr(args, "config", None) or environ.get(options.CONFIG_ENV)
    if config_path:
        layers.append((f"config {config_path}", read_config_file(config_path)))
    layers.append(("environment", options.env_values(options.RUN, environ)))
    layers.append(("command line", options.args_values(options.RUN, args)))
    merged, sources = options.convert_all(options.RUN, layers)

    if merged.get("dmtcp"):  # its images are a checkpoint path; its completion rule
        from .dmtcp import adjust

        adjust(merged)
    sandbox = merged.get("sandbox") or environ.get("_CONDOR_SCRATCH_DIR") or os.getcwd()
    merged["sandbox"] = os.path.realpath(sandbox)

    if merged.get("resume_args") is not None:
        import shlex

        try:
            merged["resume_args"] = tuple(shlex.split(merged["resume_args"]))
        except ValueError as exc:
            raise ConfigError(f"--resume-args: {exc}; quote it as a shell would") from exc
    # the vacate time: grace and eviction budgets are derived from it (issue 13.1, rule 9)
    machine_ad = environ.get("_CONDOR_MACHINE_AD")
    machine_vacate = None
    if machine_ad and os.path.isfile(machine_ad):
        from .jobad import machine_max_vacate_time

        machine_vacate = machine_max_vacate_time(machine_ad)
    found = vacate_time(job_ad_raw, machine_vacate, under_condor=bool(job_ad_raw) or machine_vacate is not None)
    timing = None
    if found is not None:
        explicit = [sources[d] for d in ("kill_grace", "checkpoint_on_evict") if d in sources]
        where = f" (from the {', '.join(dict.fromkeys(explicit))})" if explicit and explicit != ["command line"] else ""
        timing = derive_timing(found[0], found[1], kill_grace=merged.get("kill_grace"),
                               checkpoint_on_evict=merged.get("checkpoint_on_evict"), where=where)
        merged["kill_grace"] = timing.kill_grace
        merged["promise_budget"] = timing.promise_budget
    else:
        if merged.get("kill_grace") is None:
            merged["kill_grace"] = DEFAULT_KILL_GRACE
        merged["promise_budget"] = merged.get("checkpoint_on_evict") or DEFAULT_KILL_GRACE
    verbosity = int(getattr(args, "verbose", 0) or 0) - int(getattr(args, "quiet", 0) or 0)
    warnings = unknown_env_warnings(environ) + list(job_ad_raw.get("notes", ()))
    if timing is not None and timing.upload_reserve < min(UPLOAD_RESERVE_MIN, timing.vacate / 4):
        warnings.append(f"--kill-grace and --checkpoint-on-evict leave {timing.upload_reserve:g} s of the "
                        f"vacate time {timing.vacate:g} s for HTCondor's eviction upload; lower them if "
                        "eviction-time files must reach the spool")
    budget = merged.pop("promise_budget")
    cfg = RunConfig(program=tuple(program), values=merged, verbosity=verbosity, job_ad=job_ad_raw,
                    sources=sources, timing=timing, promise_budget=budget, warnings=tuple(warnings))
    validate(cfg)
    return cfg


def check_paths(cfg: RunConfig) -> None:
    """What only the machine that runs the job can check (``run`` calls it, ``check`` does not)."""
    if not os.path.isdir(cfg.sandbox):
        raise ConfigError(f"--sandbox {cfg.sandbox}: not a directory; give the job's sandbox (its working directory)")
    if cfg.events and not os.path.isdir(os.path.dirname(os.path.abspath(cfg.events))):
        raise ConfigError(f"--events {cfg.events}: its directory does not exist; give a file in an existing directory")


def validate(cfg: RunConfig) -> None:

    """Cross-option checks; each error names the options and what to do."""
    from .rules import parse_rules

    parse_rules(list(cfg.complete_when), option="--complete-when")
    parse_rules(list(cfg.done_when), option="--done-when", done=True)
    wants_checkpoint = bool(cfg.trigger_signal or cfg.every or cfg.watch or cfg.inspect_on_exit
                            or cfg.checkpoint_on_evict)
    if wants_checkpoint and not cfg.checkpoint:
        raise ConfigError("a checkpoint trigger is set but no --checkpoint PATH: name the files the "
                          "program writes its checkpoint to")
    if cfg.kill_signal in cfg.trigger_signal:
        raise ConfigError(f"--trigger-signal and --kill-signal are both {cfg.kill_signal}: HTCondor could "
                          "not tell a checkpoint request from an eviction; choose another CheckpointSig")
    if cfg.remove_kill_signal is not None and cfg.remove_kill_signal in cfg.trigger_signal:
        raise ConfigError(f"--trigger-signal and --remove-kill-signal are both {cfg.remove_kill_signal}: "
                          "a removal could not be told from a checkpoint request; choose another CheckpointSig")
    if cfg.dmtcp_prefix is not None and not cfg.dmtcp:
        raise ConfigError(f"--dmtcp-prefix {cfg.dmtcp_prefix!r} has no effect without --dmtcp: add --dmtcp, or drop it")
    if cfg.dmtcp_prefix is not None and not cfg.dmtcp_prefix.strip():
        raise ConfigError("--dmtcp-prefix is empty: name DMTCP's folder or archive, or drop it to use DMTCP on PATH")
    if cfg.every and cfg.job_signal is None and not cfg.trigger_signal and not cfg.watch and not cfg.dmtcp:
        raise ConfigError(f"--every {cfg.every:g} asks for checkpoints, but no signal would tell the program: "
                          "give --job-signal SIG (the signal the program saves on), or --watch when it "
                          "checkpoints on its own")
    if cfg.exit_signal is not None and cfg.exit_signal in cfg.trigger_signal:
        raise ConfigError("--exit-signal equals a --trigger-signal; choose distinct signals")
    store = os.path.realpath(os.path.join(cfg.sandbox, cfg.store))
    for path in cfg.checkpoint:
        if os.path.isabs(path) or ".." in path.split(os.sep):
            raise ConfigError(f"--checkpoint {path}: give a path relative to the sandbox, inside it")
        if os.path.realpath(os.path.join(cfg.sandbox, path)) == store:
            raise ConfigError(f"--checkpoint {path} is the store itself; the store is where commits go")

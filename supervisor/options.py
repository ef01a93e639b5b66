"""The one table of options: ``run``, ``dry-run``, ``submit-snippet``, ``check`` and ``report``.

Each row (:class:`Option`) says everything about one option: its flag, its environment twin, its
TOML key (``run`` only: the ``--config`` file), the HTCondor job-ad attribute and submit command
it corresponds to (where one does), its default, its converter and its help. From the rows come:
the argparse parsers (:func:`add_arguments`), ``run``'s argv read without argparse for the plain
forms (:func:`parse_run_argv`), the reading of the environment and of the run
config file (:func:`env_values`, :func:`convert_all`), the settings objects
(``config.RunConfig``, ``condor.dryrun.Options``), and the reference pages ``cli.md``,
``configuration.md``, ``environment.md`` and the options of ``dry-run.md`` (``docs/gen.py``).
Adding a run option is one row of :data:`RUN` plus its use (``cfg.<dest>``).

Converters take a string (flag, environment) or a TOML value and either return the value or raise
``ConfigError`` with one line naming the option and what to give instead (exit status 64).
A boolean environment variable that is neither true nor false is such an error, never False.

This module is on the ``run`` start-up path: it imports nothing beyond ``math`` and the package's
errors and signals (``argparse`` and ``shlex`` where used), and builds nothing until asked.
"""

from __future__ import annotations

import math

from .errors import ConfigError
from .exitstatus import DEFAULT_CHECKPOINT_EXIT_CODE
from .signals import parse_fatal_signal, parse_signal

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any, Callable, Optional

RUN_ENV_PREFIX = "CKPT_"
DRYRUN_ENV_PREFIX = "CKPT_DRYRUN_"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


# --------------------------------------------------------------------------- converters


def seconds(name: str, *, allow_zero: bool = True, maximum: float = 366 * 86400) -> Callable[[Any], float]:
    def conv(value: Any) -> float:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"--{name}: {value!r} is not a number of seconds") from None
        if math.isnan(number) or number < 0 or (number == 0 and not allow_zero) or number > maximum:
            low = "0" if allow_zero else "more than 0"
            raise ConfigError(f"--{name}: {value!r} is out of range; give {low} to {maximum:g} seconds")
        return number

    return conv


def exit_code(value: Any) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        code = int(str(value), 10) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise ConfigError(f"--exit-code: {value!r} is not an exit code; give 1-255 (85 is usual)") from None
    if not 1 <= code <= 255:
        raise ConfigError(f"--exit-code: {code} is out of range; give 1-255 (0 means success to HTCondor)")
    return code


def signal_(name: str) -> Callable[[Any], int]:
    return lambda v: parse_signal(v, what=f"--{name}")


def fatal_signal(name: str) -> Callable[[Any], int]:
    return lambda v: parse_fatal_signal(v, what=f"--{name}")


def codes(value: Any) -> frozenset[int]:
    items = value if isinstance(value, list) else str(value).split(",")
    out = set()
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            code = int(text)
        except ValueError:
            raise ConfigError(f"--inspect-on-exit: {text!r} is not an exit code; give codes like 0 or 1,2") from None
        if not 0 <= code <= 255:
            raise ConfigError(f"--inspect-on-exit: {code} is out of range 0-255")
        out.add(code)
    return frozenset(out)


def choice(name: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    def conv(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(f"--{name}: {value!r} is not one of {', '.join(choices)}")
        return text

    return conv


# Moments the dry run's --evict-on can aim an eviction at, whatever the machine's speed: right
# after the checkpoint signal is sent, at the start of a checkpoint upload, or S seconds into a
# run (run+S: mid-run, counted from the run's own start).
DRYRUN_EVICT_ON_MOMENTS = ("checkpoint-signal", "upload")
RUN_MOMENT = "run+"


def evict_moment(name: str) -> Callable[[Any], str]:
    """checkpoint-signal, upload, or run+S (S a positive, finite number of seconds), normalised."""

    def conv(value: Any) -> str:
        text = str(value).strip().lower()
        if text in DRYRUN_EVICT_ON_MOMENTS:
            return text
        if text.startswith(RUN_MOMENT):
            try:
                number = float(text[len(RUN_MOMENT):])
            except ValueError:
                number = math.nan
            if math.isfinite(number) and number > 0:
                return f"{RUN_MOMENT}{number:g}"
        raise ConfigError(f"--{name}: {value!r} is not a moment; give checkpoint-signal, upload or "
                          "run+S (S seconds into a run, more than 0)")

    return conv


def run_moment_seconds(moment: str) -> Optional[float]:
    """S of a normalised run+S moment; None for the other moments."""
    return float(moment[len(RUN_MOMENT):]) if moment.startswith(RUN_MOMENT) else None


def boolean(name: str) -> Callable[[Any], bool]:
    """true/false, 1/0, yes/no, on/off (any case; empty is false); anything else is an error."""

    def conv(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        raise ConfigError(f"--{name}: {value!r} is not true or false; give true/false, 1/0, yes/no or on/off")

    return conv


def count(name: str, *, low: int = 0, high: int = 1_000_000) -> Callable[[Any], int]:
    def conv(value: Any) -> int:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = int(str(value).strip(), 10) if not isinstance(value, int) else value
        except (TypeError, ValueError):
            raise ConfigError(f"--{name}: {value!r} is not a whole number") from None
        if not low <= number <= high:
            raise ConfigError(f"--{name}: {number} is out of range; give {low} to {high}")
        return number

    return conv


def text(name: str) -> Callable[[Any], str]:
    def conv(value: Any) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"--{name}: {value!r} must be a string")
        return value

    return conv


def time_point(name: str) -> Callable[[Any], float]:
    """A time in seconds after submission (the dry run's --evict-at, --crash-at): finite, >= 0."""

    def conv(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"--{name}: {value!r} is not a number of seconds") from None
        if not (math.isfinite(number) and number >= 0):
            raise ConfigError(f"--{name} {number:g}: give a time in seconds after submission, 0 or more")
        return number

    return conv


def duration(name: str, *, positive: bool) -> Callable[[Any], float]:
    """A finite number of seconds, > 0 (``positive``) or >= 0."""

    def conv(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"--{name}: {value!r} is not a number of seconds") from None
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            raise ConfigError(f"--{name} must be a {'positive number' if positive else 'number'} of "
                              f"seconds{'' if positive else ', 0 or more'}, not {value!r}")
        return number

    return conv


def number(name: str) -> Callable[[Any], float]:
    def conv(value: Any) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"--{name}: {value!r} is not a number") from None

    return conv


def integer(name: str) -> Callable[[Any], int]:
    def conv(value: Any) -> int:
        try:
            return int(str(value).strip(), 10)
        except ValueError:
            raise ConfigError(f"--{name}: {value!r} is not a whole number") from None

    return conv


# --------------------------------------------------------------------------- the row


class Option:
    """One option. ``command`` is the subcommand it belongs to; ``env_prefix`` None: no
    environment twin; ``toml``: a key of the ``run --config`` file; ``attr`` and ``submit``: the
    job-ad attribute and submit command it corresponds to (documentation; the attribute reading
    itself is ``supervisor.condor.attributes``); ``env_split``: how a repeatable option's
    environment value is split (``shell`` or ``comma``); ``group``: its argparse argument group;
    options with the same ``exclusive`` tag are mutually exclusive.

    A plain class with an explicit ``__init__`` (not a ``record``): the run command builds its
    rows at every start.
    """

    __slots__ = ("attr", "command", "convert", "default", "env_prefix", "env_split", "exclusive", "flag", "group",
                 "help", "metavar", "multiple", "name", "short", "show_default", "submit", "toml")

    def __init__(self, name: str, help: str, convert: Callable[[Any], Any], default: Any = None, *,
                 multiple: bool = False, flag: bool = False, metavar: Optional[str] = None,
                 short: Optional[str] = None, command: str = "run", env_prefix: Optional[str] = RUN_ENV_PREFIX,
                 env_split: str = "shell", toml: bool = True, attr: str = "", submit: str = "", group: str = "",
                 exclusive: str = "", show_default: bool = True) -> None:
        self.name = name
        self.help = help
        self.convert = convert
        self.default = default
        self.multiple = multiple
        self.flag = flag  # takes no value
        self.metavar = metavar
        self.short = short
        self.command = command
        self.env_prefix = env_prefix
        self.env_split = env_split
        self.toml = toml
        self.attr = attr  # job-ad attribute(s) that give the default
        self.submit = submit  # the submit command that matches
        self.group = group
        self.exclusive = exclusive
        self.show_default = show_default  # append "(default X)" to the help

    def __repr__(self) -> str:
        return f"Option({self.command} --{self.name})"

    @property
    def env(self) -> str:
        """The environment twin (``CKPT_KILL_GRACE``); empty when there is none."""
        if self.env_prefix is None:
            return ""
        return self.env_prefix + self.name.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def empty(self) -> Any:
        """The value when nothing sets the option: the default, else () for a repeatable one."""
        if self.default is not None:
            return self.default
        return () if self.multiple else None

    def help_text(self) -> str:
        out = self.help
        if self.env:
            out += f" [env {self.env}]"
        if self.show_default and self.default not in (None, False, frozenset(), ()):
            shown = f"{self.default:g}" if isinstance(self.default, float) else str(self.default)
            out += f" (default {shown})"
        return out


def _run(*args: Any, **kwargs: Any) -> Option:
    return Option(*args, **kwargs)


def _dry(name: str, help: str, convert: Callable[[Any], Any], **kwargs: Any) -> Option:
    kwargs.setdefault("env_split", "comma")
    return Option(name, help, convert, command="dry-run", env_prefix=DRYRUN_ENV_PREFIX, toml=False, **kwargs)


def _local(command: str, name: str, help: str, convert: Callable[[Any], Any], **kwargs: Any) -> Option:
    return Option(name, help, convert, command=command, env_prefix=None, toml=False, **kwargs)


# --------------------------------------------------------------------------- the table

RUN: tuple[Option, ...] = (
    # checkpoint set and store
    _run("checkpoint", "a file or directory (relative to the sandbox) that is part of the program's "
         "checkpoint; repeat for each", text("checkpoint"), multiple=True, metavar="PATH",
         submit="transfer_checkpoint_files (through --store)"),
    _run("store", "the committed checkpoint's directory; list it in transfer_checkpoint_files",
         text("store"), default="checkpoint.atomic", metavar="PATH", submit="transfer_checkpoint_files"),
    _run("sandbox", "directory that relative paths start from (default: $_CONDOR_SCRATCH_DIR or the "
         "current directory)", text("sandbox"), metavar="DIR"),
    # triggers
    _run("trigger-signal", "signal that asks for a checkpoint (HTCondor's CheckpointSig; default from "
         "the job ad when WantCheckpointSignal is true); repeatable", signal_("trigger-signal"),
         multiple=True, metavar="SIG", attr="WantCheckpointSignal, CheckpointSig (else KillSig)",
         submit="+WantCheckpointSignal, +CheckpointSig"),
    _run("job-signal", "signal sent to the program to make it checkpoint (default: the trigger signal)",
         signal_("job-signal"), metavar="SIG"),
    _run("every", "ask for a checkpoint every SECONDS on our own timer", seconds("every", allow_zero=False),
         metavar="SECONDS"),
    _run("watch", "the program checkpoints by itself: commit every new complete checkpoint",
         boolean("watch"), default=False, flag=True),
    _run("inspect-on-exit", "exit codes after which the sandbox is inspected: done (see --done-when) "
         "or a new checkpoint since this start means 'checkpoint'", codes, default=frozenset(),
         metavar="CODES"),
    _run("done-when", "rule meaning the program has finished: marker=PATH, log=REGEX or command=CMD; "
         "repeatable (all must hold)", text("done-when"), multiple=True, metavar="RULE"),
    _run("complete-when", "rule meaning a checkpoint is complete: quiet=SECONDS, marker=PATH, log=REGEX, "
         "command=CMD, closed, exit; repeatable (all must hold; default quiet=2)",
         text("complete-when"), multiple=True, metavar="RULE"),
    _run("checkpoint-on-evict", "on the soft-kill signal, first try a checkpoint within SECONDS",
         seconds("checkpoint-on-evict", allow_zero=False), metavar="SECONDS"),
    _run("checkpoint-timeout", "give up on a requested checkpoint after SECONDS",
         seconds("checkpoint-timeout", allow_zero=False), metavar="SECONDS"),
    _run("on-timeout", "after a checkpoint timeout: continue running, or fail (kill, exit 75)",
         choice("on-timeout", ("continue", "fail")), default="continue", metavar="ACTION"),
    _run("min-run", "with --every/--watch: commit locally but exit for transfer only after SECONDS "
         "since this start", seconds("min-run"), default=0.0, metavar="SECONDS", show_default=False),
    _run("dmtcp", "the program cannot checkpoint itself: run it under DMTCP, whose memory images "
         "are committed with the --checkpoint files", boolean("dmtcp"), default=False, flag=True),
    _run("dmtcp-prefix", "DMTCP's install folder or .tar.xz/.tar.gz archive (relative to the sandbox; "
         "default: DMTCP on PATH)", text("dmtcp-prefix"), metavar="PATH"),
    _run("freeze", "hold the program's process tree still (SIGSTOP, then SIGCONT) while its "
         "checkpoint files are copied, so that a program rewriting them cannot tear the copy; "
         "false to let it run", boolean("freeze"), default=True, metavar="BOOL"),
    _run("max-no-progress", "end the job with status 76 after N executions in a row that "
         "committed, byte for byte, the checkpoint they had restored (0: never)",
         count("max-no-progress"), default=10, metavar="N"),
    _run("resume-args", "arguments that replace the program's own when a committed checkpoint was "
         "restored (shell syntax)", text("resume-args"), metavar="ARGS"),
    # reporting
    _run("exit-code", "exit code that reports a committed checkpoint (HTCondor's checkpoint_exit_code; "
         "default from the job ad, else 85)", exit_code, default=DEFAULT_CHECKPOINT_EXIT_CODE,
         metavar="N", show_default=False, attr="SuccessCheckpointExitCode", submit="checkpoint_exit_code"),
    _run("exit-signal", "report a committed checkpoint by dying from SIG instead "
         "(SuccessCheckpointExitBySignal)", fatal_signal("exit-signal"), metavar="SIG",
         attr="SuccessCheckpointExitBySignal, SuccessCheckpointExitSignal",
         submit="+SuccessCheckpointExitBySignal, +SuccessCheckpointExitSignal"),
    # killing
    _run("kill-signal", "the soft-kill signal (HTCondor's KillSig; default from the job ad, else SIGTERM)",
         signal_("kill-signal"), default=15, metavar="SIG", show_default=False, attr="KillSig",
         submit="kill_sig"),
    _run("remove-kill-signal", "a second soft-kill signal (HTCondor's RemoveKillSig, used by condor_rm; "
         "default from the job ad)", signal_("remove-kill-signal"), metavar="SIG", attr="RemoveKillSig",
         submit="remove_kill_sig"),
    _run("kill-grace", "seconds between passing on the soft kill and SIGKILLing the whole tree "
         "(default: 10, less when the vacate time is short: see configuration.md)",
         seconds("kill-grace", maximum=86400), metavar="SECONDS",
         attr="JobMaxVacateTime (and the machine's MachineMaxVacateTime)", submit="job_max_vacate_time"),
    _run("signal-to", "who gets passed-on signals: the program's process group, or the child alone",
         choice("signal-to", ("group", "child")), default="group", metavar="WHO"),
    # observability
    _run("events", "append one JSON object a line for every lifecycle event to FILE", text("events"),
         metavar="FILE"),
    _run("poll-interval", "seconds between checks of the checkpoint files when inotify is unavailable",
         seconds("poll-interval", allow_zero=False, maximum=3600), default=1.0, metavar="SECONDS"),
)

DRYRUN_DEFAULT_MAX_STARTS = 100
DRYRUN_DEFAULT_MAX_RUNS = 1000
DRYRUN_DEFAULT_VACATE_TIME = 600.0  # HTCondor's MachineMaxVacateTime when the machine ad has none

# The other commands' rows are built at their first use (module __getattr__): the run command's
# start-up builds only RUN.
if TYPE_CHECKING:
    DRYRUN: tuple[Option, ...]
    SNIPPET: tuple[Option, ...]
    CHECK: tuple[Option, ...]
    REPORT: tuple[Option, ...]
    TABLE: dict[str, tuple[Option, ...]]
_LAZY = ("DRYRUN", "SNIPPET", "CHECK", "REPORT", "TABLE")


def _other_tables() -> dict[str, Any]:
    DRYRUN = (
        _dry("evict-at", "evict at T seconds after submission (repeatable)", time_point("evict-at"),
             multiple=True, metavar="T"),
        _dry("evict-on", "evict at the next MOMENT, whatever the machine's speed: checkpoint-signal (the "
             "soft kill right after the checkpoint signal, while the job writes its checkpoint), upload "
             "(at the start of a checkpoint upload) or run+S (S seconds into a run: the first run, from "
             "the previous moment on, that lasts that long); repeatable, each aims at the next moment "
             "after the previous one", evict_moment("evict-on"), multiple=True, metavar="MOMENT"),
        _dry("crash-at", "crash the execute point at T seconds after submission (repeatable)",
             time_point("crash-at"), multiple=True, metavar="T"),
        _dry("evict-every", "evict every S seconds since submission", duration("evict-every", positive=True),
             metavar="S"),
        _dry("evict-random", "evict at random, exponentially distributed intervals of mean MEAN seconds",
             duration("evict-random", positive=True), metavar="MEAN"),
        _dry("seed", "seed of the random generator for --evict-random", integer("seed"), metavar="SEED"),
        _dry("max-starts", "give up after N executions", count("max-starts", low=1, high=10**9),
             default=DRYRUN_DEFAULT_MAX_STARTS, metavar="N"),
        _dry("max-runs", "give up after N runs in all (a run is one start of the command line; a job "
             "restarts in place after each checkpoint)", count("max-runs", low=1, high=10**9),
             default=DRYRUN_DEFAULT_MAX_RUNS, metavar="N"),
        _dry("vacate-time", "the machine's vacate time: seconds between KillSig and SIGKILL at eviction; "
             "job_max_vacate_time can only shorten it", duration("vacate-time", positive=False),
             default=DRYRUN_DEFAULT_VACATE_TIME, metavar="S", attr="MachineMaxVacateTime (machine ad)",
             submit="job_max_vacate_time shortens it"),
        _dry("checkpoint-period", "with +WantCheckpointSignal, send CheckpointSig (or KillSig) every S "
             "seconds, counted from the start of each execution or the last signal (not from each "
             "restart in place)", duration("checkpoint-period", positive=True), metavar="S",
             attr="PERIODIC_CHECKPOINT (startd)", submit="+WantCheckpointSignal"),
        _dry("upload-time", "emulated duration of each checkpoint upload; a crash inside it aborts the "
             "upload, an eviction waits for its end", duration("upload-time", positive=False),
             default=0.0, metavar="S"),
        _dry("interactive", "read single keys while the job runs: c checkpoint signal, e evict, "
             "k crash, s status, q remove", boolean("interactive"), default=False, flag=True),
        _dry("work-dir", "where sandboxes and the spool live (default: a new temporary directory, "
             "removed after a successful run)", text("work-dir"), metavar="DIR"),
        _dry("keep", "keep the work directory after a successful run", boolean("keep"), default=False,
             flag=True),
        _dry("quiet", "print only warnings and the summary, no timeline", boolean("quiet"), default=False,
             flag=True),
    )

    SNIPPET = (
        _local("submit-snippet", "legacy", "write +SuccessCheckpointExitCode/+WantFTOnCheckpoint (HTCondor "
               "8.8) instead of checkpoint_exit_code", boolean("legacy"), default=False, flag=True,
               group="snippet options"),
        _local("submit-snippet", "pyz", "the single-file supervisor to ship (default ckpt-supervisor.pyz)",
               text("pyz"), metavar="FILE", group="snippet options"),
        _local("submit-snippet", "python", "start the .pyz with this interpreter: executable = /usr/bin/env, "
               'arguments = "PY ckpt-supervisor.pyz run ..."', text("python"), metavar="PY",
               group="snippet options", exclusive="launch"),
        _local("submit-snippet", "installed", "use the ckpt-supervisor installed on the execute nodes; "
               "ship no .pyz", boolean("installed"), default=False, flag=True, group="snippet options",
               exclusive="launch"),
        _local("submit-snippet", "output", "a result file for transfer_output_files; repeatable (default: "
               "every new or changed top-level file)", text("output"), multiple=True, metavar="FILE",
               group="snippet options", submit="transfer_output_files"),
        _local("submit-snippet", "input", "another file for transfer_input_files; repeatable",
               text("input"), multiple=True, metavar="FILE", group="snippet options",
               submit="transfer_input_files"),
    )

    CHECK = (
        _local("check", "json", "print the findings as a JSON list", boolean("json"), default=False, flag=True),
    )

    REPORT = (
        _local("report", "mtbf", "mean time between evictions to use (default: observed in the log)",
               number("mtbf"), metavar="SECONDS"),
        _local("report", "job-log", "the job's HTCondor event log (log = in the submit file), next to a "
               "supervisor log: adds HTCondor's upload and restart time to the checkpoint cost",
               text("job-log"), metavar="JOBLOG"),
        _local("report", "exit-code", "the checkpoint exit code the runs used", integer("exit-code"),
               default=DEFAULT_CHECKPOINT_EXIT_CODE, metavar="N"),
        _local("report", "json", "print the summary as JSON", boolean("json"), default=False, flag=True,
               show_default=False),
    )

    # the rows of each command, in the order of its --help (submit-snippet takes every run option too)
    TABLE = {
        "run": RUN,
        "dry-run": DRYRUN,
        "submit-snippet": RUN + SNIPPET,
        "check": CHECK,
        "report": REPORT,
    }
    return {"DRYRUN": DRYRUN, "SNIPPET": SNIPPET, "CHECK": CHECK, "REPORT": REPORT, "TABLE": TABLE}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        globals().update({k: v for k, v in _other_tables().items() if k not in globals()})
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _table() -> dict[str, tuple[Option, ...]]:
    table: dict[str, tuple[Option, ...]] = __getattr__("TABLE") if "TABLE" not in globals() else globals()["TABLE"]
    return table


BY_DEST: dict[str, Option] = {o.dest: o for o in RUN}
CONFIG_ENV = RUN_ENV_PREFIX + "CONFIG"


def default(command: str, name: str) -> Any:
    """The default of one option (for the settings objects' own defaults)."""
    for opt in _table()[command]:
        if opt.name == name:
            return opt.empty
    raise KeyError(f"{command} has no option --{name}")


# --------------------------------------------------------------------------- parsers


def add_arguments(parser: argparse.ArgumentParser, rows: tuple[Option, ...], *,
                  convert_now: bool = False) -> None:
    """Add the rows' flags to ``parser``; every value is stored as given (``None`` when absent).

    ``convert_now``: convert on the command line through ``type=`` (for commands without an
    environment twin, whose values come from nowhere else); otherwise values stay strings and
    :func:`convert_all` converts the winning one.
    """
    groups: dict[str, Any] = {}
    exclusive: dict[str, Any] = {}
    for opt in rows:
        target: Any = parser
        if opt.group:
            if opt.group not in groups:
                groups[opt.group] = parser.add_argument_group(opt.group)
            target = groups[opt.group]
        if opt.exclusive:
            if opt.exclusive not in exclusive:
                exclusive[opt.exclusive] = target.add_mutually_exclusive_group()
            target = exclusive[opt.exclusive]
        # an option with an environment twin keeps None when not given, so that the twin can win
        given_default = opt.default if convert_now and not opt.multiple else None
        kwargs: dict[str, Any] = {"dest": opt.dest, "default": given_default, "help": opt.help_text()}
        if opt.flag:
            kwargs["action"] = "store_const"
            kwargs["const"] = True
        else:
            kwargs["metavar"] = opt.metavar
            if opt.multiple:
                kwargs["action"] = "append"
            if convert_now:
                kwargs["type"] = _argparse_type(opt)
        names = [f"--{opt.name}"] + ([opt.short] if opt.short else [])
        target.add_argument(*names, **kwargs)


def _argparse_type(opt: Option) -> Callable[[str], Any]:
    def conv(value: str) -> Any:
        import argparse

        try:
            return opt.convert(value)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    conv.__name__ = opt.metavar or opt.dest  # argparse names the type in its messages
    return conv


CONFIG_FLAG = "--config"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``run``'s flags and ``--config`` (the run parser, submit-snippet's and check's)."""
    add_arguments(parser, RUN)
    parser.add_argument(CONFIG_FLAG, metavar="FILE",
                        help=f"TOML file with the same keys as the flags [env {CONFIG_ENV}]")


def parse_run_argv(argv: Sequence[str], counts: Sequence[Sequence[str]] = ()) -> Optional[dict[str, Any]]:
    """What the run parser (:func:`add_run_options`, the ``counts`` flags, then PROGRAM) gives for
    ``argv`` (the words after ``run``), without argparse; None for anything unusual.

    The run command's start-up path: importing and building argparse costs more than the rest of
    the parse. Only the plain well-formed forms are read here: ``--name VALUE``, ``--name=VALUE``,
    a switch, a repeated option, a count flag (``counts``: its option strings, e.g. ``("-v",
    "--verbose")``), then ``--`` or the first word that is not an option, which starts PROGRAM
    (kept as argparse keeps it, ``--`` included). Anything else (an unknown or abbreviated option,
    ``-h``, a value that looks like an option, a missing value, ``--name=`` with nothing, a value
    given to a switch) returns None, and the caller parses with argparse, whose messages and exit
    statuses stay the only ones. Values stay strings, as :func:`add_arguments` stores them.
    """
    kinds: dict[str, tuple[str, str]] = {}  # option string -> (dest, kind)
    for opt in RUN:
        kind = "switch" if opt.flag else "append" if opt.multiple else "store"
        for name in (f"--{opt.name}", opt.short):
            if name:
                kinds[name] = (opt.dest, kind)
    kinds[CONFIG_FLAG] = (CONFIG_FLAG[2:], "store")
    for names in counts:
        for name in names:
            kinds[name] = (names[-1].lstrip("-").replace("-", "_"), "count")
    values: dict[str, Any] = {dest: 0 if kind == "count" else None for dest, kind in kinds.values()}
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--" or not word.startswith("-"):
            break
        name, equals, value = word.partition("=")
        if name not in kinds or (equals and not name.startswith("--")):
            return None
        dest, kind = kinds[name]
        if kind in ("switch", "count"):
            if equals:
                return None
            values[dest] = True if kind == "switch" else values[dest] + 1
            i += 1
            continue
        if equals:
            if not value:
                return None
            i += 1
        else:
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                return None
            value = argv[i + 1]
            i += 2
        if kind == "append":
            values[dest] = [*(values[dest] or ()), value]
        else:
            values[dest] = value
    values["program"] = list(argv[i:])
    return values


# --------------------------------------------------------------------------- values


def env_values(rows: tuple[Option, ...], environ: dict[str, str]) -> dict[str, Any]:
    """The raw values the environment gives (strings; a list for a repeatable option)."""
    out: dict[str, Any] = {}
    for opt in rows:
        if not opt.env or opt.env not in environ:
            continue
        raw = environ[opt.env]
        if opt.multiple:
            if opt.env_split == "comma":
                out[opt.dest] = raw.replace(",", " ").split()
            else:
                import shlex  # here: it imports re, which a plain run does not need

                try:
                    out[opt.dest] = shlex.split(raw)
                except ValueError as exc:
                    raise ConfigError(f"--{opt.name} (environment variable {opt.env}={raw!r}): {exc}; "
                                      "quote it as a shell would") from None
        else:
            out[opt.dest] = raw
    return out


def args_values(rows: tuple[Option, ...], args: Any) -> dict[str, Any]:
    """The values given on the command line (argparse leaves the others None)."""
    given = vars(args)
    return {o.dest: given[o.dest] for o in rows if given.get(o.dest) is not None}


def convert_all(rows: tuple[Option, ...], layers: list[tuple[str, dict[str, Any]]]
                ) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge ``layers`` (lowest first: ``(source, {dest: raw})``), convert the winning values and
    fill in the defaults. Returns (values for every row, where each given value came from).

    A conversion error is a ConfigError naming the option and, unless it was the command line,
    where the value came from.
    """
    by_dest = {o.dest: o for o in rows}
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, values in layers:  # later layers win; only the winning value is converted
        for dest, value in values.items():
            raw[dest] = value
            sources[dest] = source
    merged: dict[str, Any] = {}
    for dest, value in raw.items():
        opt = by_dest[dest]
        try:
            if opt.multiple:
                items = value if isinstance(value, (list, tuple)) else [value]
                merged[dest] = tuple(opt.convert(v) for v in items)
            else:
                merged[dest] = opt.convert(value)
        except ConfigError as exc:
            where = sources[dest]
            if where == "environment":
                where = f"environment variable {opt.env}"
            raise ConfigError(f"{exc} (from the {where})" if where != "command line" else str(exc)) from None
    for opt in rows:
        if opt.dest not in merged:
            merged[opt.dest] = opt.empty  # defaults are already of the right type
    return merged, sources


def resolve(command: str, args: Any, environ: dict[str, str]) -> dict[str, Any]:
    """A command's values from its flags and environment twins (the command line wins)."""
    rows = _table()[command]
    values, _ = convert_all(rows, [("environment", env_values(rows, environ)),
                                   ("command line", args_values(rows, args))])
    return values

"""Command line: ``main_parser()``, ``main(argv) -> int`` and ``entrypoint()``.

Errors become exit statuses here and only here (see ``supervisor.exitstatus``); the library never
calls ``sys.exit``.
"""

from __future__ import annotations

import sys


def catch_early(caught: list[int] | None = None) -> list[int]:
    """Record signals that arrive before the loop is ready (during imports and set-up).

    Installed first thing by ``run`` (at the import of this module when the process was started
    as ``run``, before anything else is imported; the ``.pyz`` bootstrap even earlier), so that a
    soft kill or checkpoint signal sent while Python starts us does not kill the supervisor with
    the default action; the loop replays them. HTCondor's periodic checkpoint signal can come at
    any moment, a restart in place included, and the starter holds a job that dies from it.
    Signals ignored by whoever started us stay ignored. ``caught``: the list an earlier catcher
    fills, kept so that nothing it caught is lost.
    """
    import signal

    caught = [] if caught is None else caught
    skip = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}
    for sig in range(1, 32):
        if sig in skip:
            continue
        try:
            if signal.getsignal(sig) == signal.SIG_IGN and sig not in (signal.SIGPIPE, signal.SIGXFSZ):
                continue
            signal.signal(sig, lambda signum, frame: caught.append(signum))
        except (OSError, ValueError):
            continue
    return caught


# The process is `ckpt-supervisor run ...` (console script, python -m, the .pyz): catch now.
_EARLY = (catch_early(getattr(sys, "_ckpt_early_signals", None)) if sys.argv[1:2] == ["run"]
          else None)

from . import PROG, __version__, exitstatus  # noqa: E402  (after the early catcher, on purpose)
from .errors import SupervisorError  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any, NoReturn, Optional

RUN_EPILOG = """\
exit status: PROGRAM's own code; 128+N when it died from signal N; the checkpoint code
(--exit-code, default 85) only after a committed checkpoint; 126/127 when PROGRAM cannot be
executed / found; 64 usage or configuration error; 65 PROGRAM itself exited with the checkpoint
code; 74 the store could not be written; 75 checkpoint timeout with --on-timeout fail.
See docs/reference/exit-status.md.
"""


_COLUMNS: list[int] = []


def _columns() -> int:
    """The terminal width as ``shutil.get_terminal_size`` finds it, computed once per process."""
    if not _COLUMNS:
        import os

        try:
            columns = int(os.environ.get("COLUMNS", "0"))
        except ValueError:
            columns = 0
        if columns <= 0:
            try:
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                columns = 0
        _COLUMNS.append(columns or 80)
    return _COLUMNS[0]


_CLASSES: list[Any] = []


def _parser_classes() -> Any:
    """(run formatter, top formatter, parser) classes, built at the first use: argparse is not
    imported by a plain ``run`` (see ``options.parse_run_argv``)."""
    if _CLASSES:
        return _CLASSES[0]
    import argparse

    class _Formatter(argparse.RawDescriptionHelpFormatter):
        """argparse builds a formatter for every add_argument() (to check metavars); the stock one
        imports shutil and asks the terminal for its size each time. Same output, one query."""

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: Optional[int] = None) -> None:
            super().__init__(prog, indent_increment, max_help_position,
                             _columns() - 2 if width is None else width)

    class _TopFormatter(argparse.HelpFormatter):
        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: Optional[int] = None) -> None:
            super().__init__(prog, indent_increment, max_help_position,
                             _columns() - 2 if width is None else width)

    class _Parser(argparse.ArgumentParser):
        """argparse with our log prefix on its usage errors (``ckpt-supervisor[PID]: error: ...``)."""

        def error(self, message: str) -> NoReturn:
            import os

            self.print_usage(sys.stderr)
            sys.stderr.write(f"{PROG}[{os.getpid()}]: error: {self.prog}: {message}\n")
            raise SystemExit(2)

    _CLASSES.append((_Formatter, _TopFormatter, _Parser))
    return _CLASSES[0]


# the count flags of run (-v/-q): one list for its parser and options.parse_run_argv
RUN_COUNTS = (("-v", "--verbose", "more log lines on stderr"), ("-q", "--quiet", "fewer log lines on stderr"))


def main_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only="run"`` just the run command (start-up cost matters there)."""
    import argparse

    from .options import add_run_options

    _Formatter, _TopFormatter, _Parser = _parser_classes()
    parser: argparse.ArgumentParser = _Parser(
        prog=PROG,
        description="Run a program that cannot exit after a checkpoint as an HTCondor self-checkpointing job.",
        formatter_class=_TopFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser(
        "run", help="supervise PROGRAM: pass signals on, checkpoint, commit, report",
        usage=f"{PROG} run [OPTIONS] -- PROGRAM [ARGS...]", epilog=RUN_EPILOG,
        formatter_class=_Formatter,
    )
    add_run_options(run)
    for short, long, text in RUN_COUNTS:
        run.add_argument(short, long, action="count", default=0, help=text)
    run.add_argument("program", nargs=argparse.REMAINDER, metavar="PROGRAM [ARGS...]")

    if only == "run":
        return parser
    for name in ("dryrun", "snippet", "check", "report"):
        try:
            module = __import__(f"supervisor.condor.{name}", fromlist=["add_parser"])
        except ImportError:
            continue
        if hasattr(module, "add_parser"):
            module.add_parser(sub)
    return parser


def _error(message: str, status: int) -> int:
    import os

    # the same prefix as every log line of the run (tini's PRINT_*): name and pid
    sys.stderr.write(f"{PROG}[{os.getpid()}]: error: {message}\n")
    return status




def run_command(args: Any, early: Optional[list[int]] = None) -> int:
    from . import config
    from .loop import Supervisor
    from .process import die_by_signal

    cfg = config.build(args)
    config.check_paths(cfg)

    sup = Supervisor(cfg, early_signals=early)
    outcome = sup.run()
    if outcome.by_signal is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        die_by_signal(outcome.by_signal)
    return outcome.status


def main(argv: Optional[Sequence[str]] = None) -> int:
    from_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    early = None
    if argv[:1] == ["run"]:
        early = _EARLY if from_process and _EARLY is not None else catch_early()
    args: Any = None
    if argv[:1] == ["run"]:  # the plain forms without argparse; anything else goes to argparse
        from .options import parse_run_argv

        fast = parse_run_argv(argv[1:], [names[:2] for names in RUN_COUNTS])
        if fast is not None:
            import types

            args = types.SimpleNamespace(command="run", **fast)
    if args is None:
        parser = main_parser(only="run" if argv[:1] == ["run"] else None)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
            code = exc.code if isinstance(exc.code, int) else 1
            return 0 if code == 0 else exitstatus.EXIT_USAGE
    try:
        if args.command == "run":
            return run_command(args, early)

        handler = getattr(args, "handler", None)
        if handler is None:
            return _error(f"unknown command {args.command!r}", exitstatus.EXIT_USAGE)
        return int(handler(args))
    except SupervisorError as exc:
        return _error(str(exc), exc.exit_status)
    except KeyboardInterrupt:
        return exitstatus.SIGNAL_BASE + 2
    except Exception:  # a bug of ours: say so, never report a checkpoint
        import traceback

        traceback.print_exc()
        return _error("internal error (a bug in the supervisor; please report it with the trace above)",
                      exitstatus.EXIT_INTERNAL)


def entrypoint() -> NoReturn:
    status = main()
    # Exit without interpreter shutdown: CPython restores default signal handlers while it shuts
    # down, and a signal in that window would kill us and change the status HTCondor sees.
    import contextlib
    import os
    import signal

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    os._exit(status)



if __name__ == "__main__":
    entrypoint()

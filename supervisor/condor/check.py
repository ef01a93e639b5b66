"""``ckpt-supervisor check SUBMITFILE [-- RUN OPTIONS]``: find the pitfalls of a checkpointing job.

The submit file is read by the dry run's parser (``supervisor.condor.submit``), which agrees
with ``htcondor2.Submit`` on commands, values, macros and line numbers. Each finding has a
severity, the line it concerns (0: the file as a whole, e.g. a missing command), what is wrong
and the fix. ``check`` exits 1 (``exitstatus.EXIT_CHECK_FAILED``) when there is at least one
error, 0 with warnings only, 64 when the file cannot be read.

When ``executable``/``arguments`` start the supervisor (``ckpt-supervisor``, a
``*ckpt-supervisor*.pyz``, or ``python -m supervisor``) followed by ``run``, its run options are
parsed with the real option table and merged the way ``run`` merges them on the execute node:
with a job ad written from the submit file's settings and the ``CKPT_*`` variables of its
``environment``. ``-- RUN OPTIONS`` after the file name adds options on top (for a supervisor
started by a wrapper script that ``check`` cannot read).

Errors (the job cannot work as meant) and warnings are listed in :data:`RULES`; the reference
page ``docs/reference/check.md`` is written from the same table. The rules themselves are
functions in :mod:`supervisor.condor.check_rules`; :class:`Checker` holds what they share and
applies them in order.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import sys
from dataclasses import asdict, dataclass
from typing import Any, NoReturn, Optional

from .. import PROG, exitstatus, options
from ..errors import ConfigError, SubmitFileError
from ..signals import parse_signal
from . import attributes
from .submit import (
    SubmitFile,
    parse_file_list,
    parse_submit_file,
)

ERROR = "error"
WARNING = "warning"
DEFAULT_MACHINE_VACATE = 600.0  # MachineMaxVacateTime when the machine sets none
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "ash"}

# code -> (severity, one line: the pitfall). The messages of the findings add the specifics.
RULES: dict[str, tuple[str, str]] = {
    "syntax": (ERROR, "condor_submit would refuse the file (the line is named)"),
    "checkpoint-code-zero": (
        ERROR,
        "the checkpoint exit code is 0, so every successful exit is a "
        "checkpoint and the job never finishes",
    ),
    "checkpoint-code-is-success": (ERROR, "the checkpoint exit code equals success_exit_code"),
    "code-without-want-ft": (
        ERROR,
        "+SuccessCheckpointExitCode without +WantFTOnCheckpoint (and no "
        "checkpoint_exit_code): checkpoint exits are final exits",
    ),
    "by-signal-without-signal": (
        ERROR,
        "+SuccessCheckpointExitBySignal without +SuccessCheckpointExitSignal",
    ),
    "bool-reads-false": (
        WARNING,
        "a boolean attribute HTCondor reads as false (LookupBool takes true, false or a number; "
        "a string or a bare word such as yes is false)",
    ),
    "int-reads-otherwise": (
        WARNING,
        "an integer attribute HTCondor reads as another number (LookupInteger truncates a real "
        "and reads true as 1)",
    ),
    "checkpoint-sig-without-want": (
        ERROR,
        "+CheckpointSig without +WantCheckpointSignal: HTCondor never sends it",
    ),
    "store-not-transferred": (
        ERROR,
        "the supervisor's store is not in the checkpoint transfer list",
    ),
    "store-trailing-slash": (
        ERROR,
        "the store is listed with a trailing slash: its contents, not "
        "the directory, would be transferred",
    ),
    "store-nested-path": (
        ERROR,
        "the store is a nested path: HTCondor transfers it to the top of "
        "the sandbox, where the supervisor does not look",
    ),
    "supervisor-refuses": (
        ERROR,
        "the supervisor would refuse to start with these settings (exit 64)",
    ),
    "checkpoint-code-missing": (
        ERROR,
        "the supervisor checkpoints but the submit file declares no "
        "checkpoint exit: its checkpoint exit would end the job",
    ),
    "checkpoint-code-mismatch": (
        ERROR,
        "the supervisor reports a checkpoint with another status "
        "than the one the submit file declares",
    ),
    "checkpoint-code-reserved": (
        ERROR,
        "the checkpoint exit code is one the supervisor uses for "
        "something else (or 128+N, a death by signal)",
    ),
    "supervisor-not-transferred": (ERROR, "the .pyz named in arguments is not transferred"),
    "config-not-transferred": (ERROR, "the supervisor's --config file is not transferred"),
    "checkpoint-code-conflict": (
        ERROR,
        "checkpoint_exit_code and a different +SuccessCheckpointExitCode: the attribute wins, "
        "so the job ad does not say what the file seems to",
    ),
    "exit-signal-not-number": (
        ERROR,
        "+SuccessCheckpointExitSignal is not a number: HTCondor reads it as 0 and no death by "
        "signal matches",
    ),
    "checkpoint-uploaded-at-evict": (
        ERROR,
        "a working checkpoint file is uploaded at eviction (ON_EXIT_OR_EVICT): a torn copy can "
        "reach the next machine",
    ),
    "checkpoint-paths-listed": (
        ERROR,
        "a working checkpoint file is in transfer_checkpoint_files: the commit moves it into the "
        "store and the upload of the missing file holds the job",
    ),
    "store-output-missing": (
        ERROR,
        "the store is in transfer_output_files but not shipped as an input: a job that ends or "
        "is evicted before its first commit is held (code 12)",
    ),
    "evict-commit-not-uploaded": (
        WARNING,
        "--checkpoint-on-evict commits during an eviction, but the store is not in "
        "transfer_output_files with ON_EXIT_OR_EVICT, so that commit is never uploaded",
    ),
    "evict-output-missing": (
        WARNING,
        "ON_EXIT_OR_EVICT uploads transfer_output_files at every eviction: a listed file that "
        "does not exist yet holds the job (code 12)",
    ),
    "retry-output-missing": (
        WARNING,
        "max_retries (or on_exit_remove, retry_until) retries a failed run, but HTCondor first "
        "transfers transfer_output_files: a listed file the failed run has not written holds "
        "the job (code 12) instead",
    ),
    "no-hold-policy": (
        WARNING,
        "no on_exit_hold for the supervisor's own failure statuses: HTCondor ends the job and "
        "discards the checkpoint in SPOOL",
    ),
    "shell-without-exec": (
        WARNING,
        "PROGRAM is a shell script whose last command is not exec'ed and the job signal goes to "
        "the process group: the shell dies from it",
    ),
    "dmtcp-no-microarch": (
        WARNING,
        "run --dmtcp without a requirements line on Microarch: an image resumed on a CPU "
        "without the instructions it used crashes",
    ),
    "vacate-too-short": (
        WARNING,
        "the vacate time leaves the supervisor no margin beyond its kill grace and eviction budget",
    ),
    "supervisor-installed": (
        WARNING,
        "the supervisor is not transferred: every execute node must have it installed",
    ),
    "no-checkpoint-setting": (WARNING, "no checkpoint setting at all"),
    "kill-sig-mismatch": (WARNING, "the supervisor's --kill-signal differs from kill_sig"),
    "program-not-transferred": (
        WARNING,
        "PROGRAM is a file next to the submit file but is not transferred",
    ),
    "sandbox-option": (WARNING, "--sandbox moves the store away from HTCondor's scratch directory"),
    "wrapper-not-read": (
        WARNING,
        "the executable is a script that seems to start the supervisor; its options were not read",
    ),
    "no-queue": (WARNING, "no queue statement: condor_submit submits nothing"),
}

_RESERVED = {
    exitstatus.EXIT_USAGE,
    exitstatus.EXIT_PROGRAM_USED_CHECKPOINT_CODE,
    exitstatus.EXIT_INTERNAL,
    exitstatus.EXIT_STORE,
    exitstatus.EXIT_CHECKPOINT_TIMEOUT,
    exitstatus.EXIT_CANNOT_EXECUTE,
    exitstatus.EXIT_NOT_FOUND,
}


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    code: str  # a key of RULES
    line: int  # 0: the file as a whole
    message: str  # what is wrong
    fix: str  # what to do

    def format(self, path: str) -> str:
        where = f"{path}:{self.line}" if self.line else path
        return f"{where}: {self.severity} [{self.code}]: {self.message}\n    fix: {self.fix}"


@dataclass
class Invocation:
    """How the submit file starts the supervisor."""

    kind: str  # "pyz", "installed", "module"
    pyz: Optional[str]  # the .pyz path as written, when used
    pyz_is_executable: bool
    run_words: list[str]  # the words after "run"
    line: int


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def run_option_parser() -> argparse.ArgumentParser:
    """``run``'s options (the real table), raising ConfigError instead of exiting."""
    p = _Parser(prog=f"{PROG} run", add_help=False)
    options.add_run_options(p)
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("-q", "--quiet", action="count", default=0)
    p.add_argument("program", nargs=argparse.REMAINDER)
    return p


def _is_pyz(word: str) -> bool:
    base = posixpath.basename(word)
    return base.endswith(".pyz") and "ckpt-supervisor" in base


def find_invocation(sub: SubmitFile, executable: str, arguments: list[str]) -> Optional[Invocation]:
    """The supervisor in ``executable``/``arguments``, or None."""
    words = [executable, *arguments]
    line = sub.line_of("arguments") or sub.line_of("args") or sub.line_of("executable")
    for i, word in enumerate(words):
        base = posixpath.basename(word)
        kind = None
        rest_at = i + 1
        if _is_pyz(word):
            kind = "pyz"
        elif base == PROG:
            kind = "installed"
        elif word == "-m" and i + 1 < len(words) and words[i + 1] == "supervisor":
            kind, rest_at = "module", i + 2
        if kind is None:
            continue
        rest = words[rest_at:]
        if not rest or rest[0] != "run":
            return None  # another subcommand (dry-run, check, ...): not a supervised job
        return Invocation(
            kind, word if kind == "pyz" else None, kind == "pyz" and i == 0, rest[1:], line
        )
    return None


def _norm(entry: str) -> str:
    return posixpath.normpath(entry.strip()) if entry.strip() else ""


class Checker:
    def __init__(self, sub: SubmitFile, extra_run_words: Optional[list[str]] = None) -> None:
        self.sub = sub
        self.extra = extra_run_words or []
        self.findings: list[Finding] = []
        self.submit_dir = sub.path.resolve().parent

    def add(self, code: str, line: int, message: str, fix: str) -> None:
        severity = RULES[code][0]
        self.findings.append(Finding(severity, code, line, message, fix))

    # --- helpers --------------------------------------------------------------------------
    def attr(self, name: str) -> Optional[str]:
        for key, value in self.sub.attrs().items():
            if key.lower() == name.lower():
                return value.strip()
        return None

    def aline(self, name: str) -> int:
        return self.sub.line_of("my." + name)

    def bool_attr(self, name: str) -> Optional[bool]:
        """The attribute as the starter reads it (``condor.attributes``: LookupBool); None when
        absent or an expression that cannot be told without evaluating it."""
        text = self.attr(name)
        if text is None:
            return None
        value = attributes.submit_value(text)
        got = attributes.lookup_bool(value)
        if got is not None:
            return got
        note = attributes.bool_note("+" + name, value, text)
        if note is not None:
            self.add("bool-reads-false", self.aline(name), note, f"write +{name} = true (or false)")
            return False
        self.add(
            "syntax",
            self.aline(name),
            f"+{name} = {text} is not a boolean",
            f"write +{name} = true (or false)",
        )
        return None

    def int_value(self, text: Optional[str], where: str, line: int) -> Optional[int]:
        if text is None:
            return None
        try:
            return int(text.strip())
        except ValueError:
            self.add(
                "syntax", line, f"{where} = {text} is not an integer", f"give {where} a number"
            )
            return None

    def int_attr(self, name: str) -> Optional[int]:
        """An integer attribute as the starter's LookupInteger reads it (``condor.attributes``,
        as the dry run reads it): a real is truncated, a string or a bare word reads as 0. None
        when absent, or an expression that cannot be told without evaluating it."""
        text = self.attr(name)
        if text is None:
            return None
        value = attributes.submit_value(text)
        if value is None:  # undefined: as absent
            return None
        number = attributes.starter_int(value)
        if number:  # 0 (a string, a bare word) has rules of its own
            note = attributes.int_note("+" + name, value, text)
            if note is not None:
                self.add("int-reads-otherwise", self.aline(name), note.split("; write ")[0],
                         "write " + note.split("; write ")[-1].split(": ", 1)[-1])
        return number

    def signal_value(self, text: Optional[str], where: str, line: int) -> Optional[int]:
        if text is None:
            return None
        try:
            return parse_signal(text.strip().strip('"'), what=where, catchable=False)
        except ConfigError as exc:
            self.add("syntax", line, str(exc), "use a signal name such as SIGUSR2 or its number")
            return None

    def exit_signal_value(self) -> Optional[int]:
        """+SuccessCheckpointExitSignal: HTCondor reads it with LookupInteger, so a name or a
        string (``"SIGUSR2"``) reads as 0."""
        name = "SuccessCheckpointExitSignal"
        text = self.attr(name)
        if text is None:
            return None
        number = attributes.lookup_int(attributes.submit_value(text))
        if number is not None:
            return number
        try:
            hint = f" = {parse_signal(text.strip(chr(34)), what=name, catchable=False)}"
        except ConfigError:
            hint = " = N (the signal number)"
        self.add(
            "exit-signal-not-number",
            self.aline(name),
            f"+{name} = {text} is not a number: HTCondor reads it as 0, so no death by signal "
            "counts as a checkpoint and each one ends the job"
            + (" (with BySignal true the supervisor refuses to start: exit 64)" if attributes.lookup_bool(
                attributes.submit_value(self.attr("SuccessCheckpointExitBySignal") or "false")) else ""),
            f"write the bare signal number: +{name}{hint}",
        )
        return None

    def file_list(self, name: str) -> Optional[list[str]]:
        value = self.sub.get(name)
        return None if value is None else parse_file_list(value)

    # --- the checks -----------------------------------------------------------------------
    def run(self) -> list[Finding]:
        """Every finding, rule after rule (:mod:`supervisor.condor.check_rules`)."""
        from . import check_rules as rules

        if self.sub.queue_args is None:
            self.add("no-queue", 0, "the file has no queue statement", "end the file with: queue")
        declared = rules.read_declaration(self)
        rules.checkpoint_code(self, declared)
        rules.checkpoint_settings(self, declared)
        inv, executable = rules.find_supervisor(self)
        if inv is None:
            rules.wrapper_hint(self, executable)
            rules.evict_outputs(self, declared.when, set())
            rules.retry_outputs(self, set())
            return self.findings
        rules.supervisor(self, inv, declared)
        return self.findings


def check_submit(
    path: str | os.PathLike[str], run_words: Optional[list[str]] = None
) -> list[Finding]:
    """Every finding for a submit file; raises ConfigError when it cannot be read."""
    try:
        sub = parse_submit_file(path)
    except SubmitFileError as exc:
        if exc.__cause__ is not None:  # unreadable
            raise
        m = re.search(r":(\d+):", str(exc))
        return [
            Finding(
                ERROR,
                "syntax",
                int(m.group(1)) if m else 0,
                str(exc),
                "fix that line; condor_submit would refuse the file",
            )
        ]
    findings = Checker(sub, run_words).run()
    return sorted(findings, key=lambda f: (f.severity != ERROR, f.line, f.code))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="find the pitfalls of a checkpointing submit file",
        usage=f"{PROG} check [--json] SUBMITFILE [-- RUN OPTIONS]",
        description="Check an HTCondor submit file for the mistakes that break self-checkpointing "
        "jobs. Each finding: severity, line, what is wrong, the fix. Exit status 1 when there is "
        "an "
        "error, 0 with warnings only, 64 when the file cannot be read. RUN OPTIONS after -- are "
        "added "
        "to the ones found in the file's arguments. See docs/reference/check.md.",
    )
    options.add_arguments(p, options.CHECK, convert_now=True)
    p.add_argument("submit_file", metavar="SUBMITFILE")
    p.add_argument("run_options", nargs=argparse.REMAINDER, metavar="-- RUN OPTIONS")
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    words = list(args.run_options or [])
    if words and words[0] == "--":
        words = words[1:]
    findings = check_submit(args.submit_file, words or None)
    errors = sum(f.severity == ERROR for f in findings)
    if args.json:
        sys.stdout.write(json.dumps([asdict(f) for f in findings], indent=1) + "\n")
    else:
        for f in findings:
            sys.stdout.write(f.format(args.submit_file) + "\n")
        warnings = len(findings) - errors
        sys.stdout.write(
            f"{args.submit_file}: {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)}\n"
        )
    return exitstatus.EXIT_CHECK_FAILED if errors else 0

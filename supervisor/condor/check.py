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
page ``docs/reference/check.md`` is written from the same table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import posixpath
import re
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn, Optional

from .. import PROG, config, exitstatus, options
from ..errors import ConfigError, SubmitFileError
from ..jobad import format_ad
from ..signals import parse_signal, signal_name
from . import attributes
from .snippet import PYZ_NAME, VACATE_MARGIN, vacate_time
from .submit import (
    SubmitFile,
    parse_arguments,
    parse_environment,
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
        number = attributes.lookup_int(value)
        if number is None and attributes.evaluable(value) and value is not None:
            return 0
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
            "counts as a checkpoint and each one ends the job",
            f"write the bare signal number: +{name}{hint}",
        )
        return None

    def file_list(self, name: str) -> Optional[list[str]]:
        value = self.sub.get(name)
        return None if value is None else parse_file_list(value)

    # --- the checks -----------------------------------------------------------------------
    def run(self) -> list[Finding]:
        sub = self.sub
        if sub.queue_args is None:
            self.add("no-queue", 0, "the file has no queue statement", "end the file with: queue")

        # checkpoint declaration
        code_line = sub.line_of("checkpoint_exit_code")
        code = self.int_value(sub.get("checkpoint_exit_code"), "checkpoint_exit_code", code_line)
        legacy_code = self.int_attr("SuccessCheckpointExitCode")
        want_ft = self.bool_attr("WantFTOnCheckpoint")
        by_signal = self.bool_attr("SuccessCheckpointExitBySignal")
        exit_sig = self.exit_signal_value()
        want_sig = self.bool_attr("WantCheckpointSignal")
        ckpt_sig_text = self.attr("CheckpointSig")
        ckpt_sig = self.signal_value(ckpt_sig_text, "+CheckpointSig", self.aline("CheckpointSig"))
        kill_line = sub.line_of("kill_sig")
        kill_sig = self.signal_value(sub.get("kill_sig"), "kill_sig", kill_line) or 15
        vacate_line = sub.line_of("job_max_vacate_time")
        vacate = self.int_value(sub.get("job_max_vacate_time"), "job_max_vacate_time", vacate_line)
        success_line = sub.line_of("success_exit_code")
        success = self.int_value(sub.get("success_exit_code"), "success_exit_code", success_line)

        # The attribute wins over the command (it is written into the ad after it).
        effective_code = legacy_code if legacy_code is not None else code
        effective_line = (
            self.aline("SuccessCheckpointExitCode") if legacy_code is not None else code_line
        )
        ft_on = code is not None or bool(want_ft)
        declared = bool(by_signal) or effective_code is not None
        if effective_code is not None and not by_signal:
            if effective_code == 0:
                text = self.attr("SuccessCheckpointExitCode") if legacy_code is not None else None
                why = (f"+SuccessCheckpointExitCode = {text} is not a number, which HTCondor's "
                       "LookupInteger reads as 0" if text is not None and text.strip() not in ("0", "false")
                       else "the checkpoint exit code is 0")
                self.add(
                    "checkpoint-code-zero",
                    effective_line,
                    f"{why}: HTCondor would treat every successful exit "
                    "as a checkpoint and restart the job forever",
                    "use another code; 85 is the usual one (checkpoint_exit_code = 85)",
                )
            elif success is not None and effective_code == success:
                self.add(
                    "checkpoint-code-is-success",
                    effective_line,
                    f"the checkpoint exit code {effective_code} equals success_exit_code "
                    f"(line {success_line}): the job could never finish",
                    "give the checkpoint and the success distinct codes (85 is usual for "
                    "checkpoints)",
                )
        if legacy_code is not None and code is not None and legacy_code != code:
            self.add(
                "checkpoint-code-conflict",
                self.aline("SuccessCheckpointExitCode"),
                f"checkpoint_exit_code = {code} (line {code_line}) but +SuccessCheckpointExitCode "
                f"= {legacy_code}: HTCondor applies the attribute last, so the job's checkpoint "
                f"code is {legacy_code}",
                "keep one of the two (checkpoint_exit_code = N is the current form)",
            )
        if legacy_code is not None and code is None and not want_ft:
            self.add(
                "code-without-want-ft",
                self.aline("SuccessCheckpointExitCode"),
                "+SuccessCheckpointExitCode is set but +WantFTOnCheckpoint is not true and "
                "there is no checkpoint_exit_code: an exit with that code ends the job, "
                "nothing is uploaded as a checkpoint",
                "add +WantFTOnCheckpoint = true, or write checkpoint_exit_code = N instead "
                "(HTCondor 8.9.3+)",
            )
        if by_signal and self.attr("SuccessCheckpointExitSignal") is None:
            self.add(
                "by-signal-without-signal",
                self.aline("SuccessCheckpointExitBySignal"),
                "+SuccessCheckpointExitBySignal is true but +SuccessCheckpointExitSignal is not "
                "set: "
                "no death by signal matches",
                "add +SuccessCheckpointExitSignal = N (the signal number)",
            )
        if ckpt_sig_text is not None and not want_sig:
            self.add(
                "checkpoint-sig-without-want",
                self.aline("CheckpointSig"),
                "+CheckpointSig is set but +WantCheckpointSignal is not true: the execute point "
                "never sends the checkpoint signal",
                "add +WantCheckpointSignal = true, or remove +CheckpointSig",
            )
        any_setting = declared or want_ft is not None or want_sig is not None
        if not any_setting:
            self.add(
                "no-checkpoint-setting",
                0,
                "no checkpoint_exit_code, +SuccessCheckpointExitCode, BySignal or "
                "+WantCheckpointSignal setting: HTCondor will never upload a checkpoint",
                "add checkpoint_exit_code = 85 and transfer_checkpoint_files; "
                "ckpt-supervisor submit-snippet writes them",
            )
        # ON_EXIT_OR_EVICT is not needed for checkpoint uploads (they happen whatever
        # when_to_transfer_output says); it adds an upload of the output list at every eviction.
        when = (sub.get("when_to_transfer_output") or "ON_EXIT").strip().upper()

        # the supervisor
        executable = sub.get("executable") or ""
        arguments: list[str] = []
        for name in ("arguments", "args"):
            value = sub.get(name)
            if value is not None:
                try:
                    arguments = parse_arguments(
                        value, where=f"{sub.path}:{sub.line_of(name)}: {name}"
                    )
                except SubmitFileError as exc:
                    self.add("syntax", sub.line_of(name), str(exc), "fix the quoting of arguments")
        inv = find_invocation(sub, executable, arguments)
        if inv is None and self.extra:
            inv = Invocation("unknown", None, False, [], sub.line_of("executable"))
        if inv is None:
            self._wrapper_hint(executable)
            self._evict_outputs(when, set())
            return self.findings
        self._supervisor(
            inv,
            ft_on=ft_on,
            effective_code=effective_code,
            by_signal=bool(by_signal),
            exit_sig=exit_sig,
            want_sig=bool(want_sig),
            ckpt_sig=ckpt_sig,
            kill_sig=kill_sig,
            vacate=vacate,
            when=when,
        )
        return self.findings

    def _evict_outputs(self, when: str, known: set[str]) -> None:
        """ON_EXIT_OR_EVICT: each file of transfer_output_files must exist at every eviction,
        or the job is held (code 12); ``known`` are entries reported by other rules."""
        outputs = self.file_list("transfer_output_files")
        if when != "ON_EXIT_OR_EVICT" or not outputs:
            return
        inputs = {_norm(x) for x in self.file_list("transfer_input_files") or []}
        missing = [x for x in (_norm(o) for o in outputs) if x and x not in inputs | known]
        if missing:
            self.add(
                "evict-output-missing",
                self.sub.line_of("transfer_output_files"),
                f"with when_to_transfer_output = ON_EXIT_OR_EVICT, HTCondor uploads "
                f"{', '.join(missing)} at every eviction and holds the job (code 12, subcode 2) "
                "when one does not exist yet",
                "drop ON_EXIT_OR_EVICT (checkpoints are uploaded without it), or make sure each "
                "listed file exists from the start (ship an empty one in transfer_input_files)",
            )

    def _hold_policy(self) -> None:
        """The supervisor's own failures (64, 70, 74, 76) should hold the job, keeping SPOOL."""
        expr = self.sub.get("on_exit_hold")
        statuses = [exitstatus.EXIT_USAGE, exitstatus.EXIT_INTERNAL, exitstatus.EXIT_STORE]
        named = set() if expr is None else {int(n) for n in re.findall(r"(?<![\w.])\d+", expr)}
        if expr is None or not {exitstatus.EXIT_INTERNAL, exitstatus.EXIT_STORE} <= named:
            from .snippet import hold_policy_lines

            self.add(
                "no-hold-policy",
                self.sub.line_of("on_exit_hold"),
                (
                    "no on_exit_hold"
                    if expr is None
                    else "on_exit_hold does not name the supervisor's statuses 70 and 74"
                )
                + f": when the supervisor fails ({', '.join(map(str, statuses))}: usage, "
                "internal, store I/O) HTCondor ends the job and throws away its checkpoint",
                "add the lines submit-snippet writes: " + " ; ".join(hold_policy_lines()[1:2]),
            )

    def _shell_without_exec(self, program: list[str], cfg: config.RunConfig) -> None:
        """A shell wrapper that does not exec its last command dies from a job signal sent to
        the process group (issue 13.2)."""
        if cfg.signal_to != "group" or not (cfg.job_signal is not None or cfg.trigger_signal):
            return
        if not program:
            return
        script = program[0]
        if posixpath.basename(script) in _SHELLS and len(program) > 1 and program[1] != "-c":
            script = program[1]
        path = self.submit_dir / script
        try:
            if os.path.isabs(script) or not path.is_file() or path.stat().st_size > 1 << 20:
                return
            text = path.read_text(errors="replace")
        except OSError:
            return
        lines = text.splitlines()
        first = lines[0] if lines else ""
        interpreter = [posixpath.basename(w) for w in first[2:].split()] if first[:2] == "#!" else []
        if script == program[0] and not _SHELLS & set(interpreter):
            return
        commands = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        if not commands or commands[-1].startswith("exec ") or re.search(r"^\s*trap\b", text, re.M):
            return
        if commands[-1] in ("fi", "done", "esac", "}") and any(c.startswith("exec ") for c in commands):
            return  # the last command is a block whose branches may all exec: not decidable here
        sig = cfg.job_signal if cfg.job_signal is not None else cfg.trigger_signal[0]
        self.add(
            "shell-without-exec",
            self.sub.line_of("arguments") or self.sub.line_of("executable"),
            f"{script} is a shell script whose last command ({commands[-1][:40]}) is not "
            f"exec'ed: the job signal {signal_name(sig)} goes to the whole process group and "
            "kills the shell, so the run ends with 128+N instead of a checkpoint",
            f"start the last command with exec in {script}, or trap {signal_name(sig)} there, "
            "or give the supervisor --signal-to child",
        )

    def _wrapper_hint(self, executable: str) -> None:
        path = self.submit_dir / executable
        try:
            if path.is_file() and path.stat().st_size < 65536:
                text = path.read_text(errors="replace")
                if PROG in text or "-m supervisor" in text or ".pyz" in text:
                    self.add(
                        "wrapper-not-read",
                        self.sub.line_of("executable"),
                        f"{executable} seems to start the supervisor; its run options were not "
                        "checked",
                        f"run: {PROG} check {self.sub.path.name} -- RUN OPTIONS (the ones the "
                        "script uses)",
                    )
        except OSError:
            pass

    def _supervisor(
        self,
        inv: Invocation,
        *,
        ft_on: bool,
        effective_code: Optional[int],
        by_signal: bool,
        exit_sig: Optional[int],
        want_sig: bool,
        ckpt_sig: Optional[int],
        kill_sig: int,
        vacate: Optional[int],
        when: str,
    ) -> None:
        sub = self.sub
        inputs = [_norm(x) for x in (self.file_list("transfer_input_files") or [])]
        should = (sub.get("should_transfer_files") or "YES").strip().upper()
        in_line = sub.line_of("transfer_input_files") or inv.line
        parser = run_option_parser()
        try:
            args = parser.parse_args(inv.run_words)
            if self.extra:
                extra = parser.parse_args(
                    self.extra if "--" in self.extra else [*self.extra, "--", "PROGRAM"]
                )
                for key, value in vars(extra).items():
                    if key == "program" and args.program:
                        continue  # the file's own PROGRAM, when it shows one, is kept
                    if value not in (None, 0):
                        setattr(args, key, value)
        except ConfigError as exc:
            self.add(
                "supervisor-refuses",
                inv.line,
                f"the run options do not parse: {exc}",
                f"fix the arguments; see {PROG} run --help",
            )
            return
        program = list(args.program or [])
        if program and program[0] == "--":
            program = program[1:]

        # shipping the supervisor
        if inv.kind == "pyz" and not inv.pyz_is_executable and inv.pyz is not None:
            if _norm(inv.pyz) not in inputs and posixpath.basename(inv.pyz) not in [
                posixpath.basename(x) for x in inputs
            ]:
                if os.path.isabs(inv.pyz) or should == "NO":
                    self.add(
                        "supervisor-installed",
                        inv.line,
                        f"{inv.pyz} is not transferred: it must exist at that path on every "
                        "execute node",
                        f"add {posixpath.basename(inv.pyz)} to transfer_input_files and name it "
                        "without a directory in arguments",
                    )
                else:
                    self.add(
                        "supervisor-not-transferred",
                        in_line,
                        f"arguments run {inv.pyz} but transfer_input_files does not list it: the "
                        "job "
                        "fails at its first start",
                        f"add {inv.pyz} to transfer_input_files (or write executable = {inv.pyz})",
                    )
        elif inv.kind in ("installed", "module"):
            what = PROG if inv.kind == "installed" else "python -m supervisor"
            self.add(
                "supervisor-installed",
                inv.line,
                f"the job runs {what}, which must be installed on every execute node",
                f"ship the single file instead: executable = {PYZ_NAME} "
                f"(build it with python3 -m supervisor.build_pyz)",
            )
        if getattr(args, "sandbox", None):
            self.add(
                "sandbox-option",
                inv.line,
                f"--sandbox {args.sandbox}: the store and checkpoint paths are resolved there, not "
                "in "
                "HTCondor's scratch directory, so transfer_checkpoint_files cannot carry them",
                "remove --sandbox; the supervisor uses $_CONDOR_SCRATCH_DIR",
            )
        for word in program[:2]:
            if (
                word.startswith("-")
                or os.path.isabs(word)
                or not (self.submit_dir / word).is_file()
            ):
                continue
            if _norm(word) not in inputs and word != sub.get("executable"):
                self.add(
                    "program-not-transferred",
                    in_line,
                    f"{word} is a file next to the submit file but transfer_input_files does not "
                    "list it",
                    f"add {word} to transfer_input_files (unless the execute nodes have it at that "
                    "path)",
                )
        config_file = getattr(args, "config", None)
        if config_file and not os.path.isabs(config_file):
            if _norm(config_file) not in inputs:
                self.add(
                    "config-not-transferred",
                    in_line,
                    f"--config {config_file} is not in transfer_input_files: the supervisor exits "
                    "64",
                    f"add {config_file} to transfer_input_files",
                )
            args.config = str(self.submit_dir / config_file)
            if not Path(args.config).is_file():
                args.config = None  # reported above or a file made elsewhere; do not fail here

        cfg = self._build(args, program, inv)
        if cfg is None:
            return

        # what the supervisor reports versus what HTCondor expects
        wants = bool(
            cfg.trigger_signal
            or cfg.every
            or cfg.watch
            or cfg.inspect_on_exit
            or cfg.checkpoint_on_evict
        )
        code_line = sub.line_of("checkpoint_exit_code") or self.aline("SuccessCheckpointExitCode")
        if cfg.exit_signal is not None:
            if not (by_signal and exit_sig == cfg.exit_signal):
                self.add(
                    "checkpoint-code-mismatch",
                    inv.line,
                    "the supervisor reports a checkpoint by dying from "
                    f"{signal_name(cfg.exit_signal)}, but "
                    "the submit file does not declare that signal (SuccessCheckpointExitBySignal)",
                    f"add +WantFTOnCheckpoint = true, +SuccessCheckpointExitBySignal = true, "
                    f"+SuccessCheckpointExitSignal = {cfg.exit_signal}",
                )
        elif effective_code is None or by_signal:
            if wants:
                self.add(
                    "checkpoint-code-missing",
                    code_line or inv.line,
                    f"the supervisor exits {cfg.exit_code} after each committed checkpoint, but "
                    "the submit "
                    "file declares no checkpoint exit code: HTCondor would take it as the job's "
                    "final exit",
                    f"add checkpoint_exit_code = {cfg.exit_code}",
                )
        elif cfg.exit_code != effective_code:
            self.add(
                "checkpoint-code-mismatch",
                inv.line,
                f"--exit-code {cfg.exit_code} differs from the submit file's checkpoint code "
                f"{effective_code} (line {code_line}): each checkpoint would end the job",
                "drop --exit-code (the supervisor reads the code from the job ad) or make them "
                "equal",
            )
        elif not ft_on:
            pass  # reported as code-without-want-ft
        if (
            cfg.exit_signal is None
            and effective_code is not None
            and not by_signal
            and (effective_code in _RESERVED or effective_code >= exitstatus.SIGNAL_BASE)
        ):
            self.add(
                "checkpoint-code-reserved",
                code_line,
                f"checkpoint code {effective_code} is also "
                + (
                    exitstatus.SUPERVISOR_CODES.get(effective_code, "")
                    or f"how the supervisor reports a death by signal {effective_code - 128}"
                )
                + ": such an exit would be taken for a checkpoint",
                "use 85, the code the HTCondor manual recommends",
            )
        if cfg.kill_signal != kill_sig:
            self.add(
                "kill-sig-mismatch",
                inv.line,
                f"--kill-signal is {signal_name(cfg.kill_signal)} but kill_sig is "
                f"{signal_name(kill_sig)}: "
                "HTCondor's soft kill would be passed on as an ordinary signal, with no grace or "
                "checkpoint on eviction",
                "drop --kill-signal (it defaults to the job's KillSig) or make them equal",
            )
        del want_sig, ckpt_sig

        # the store in the transfer lists
        store = _norm(cfg.store)
        ckpt_cmd = "transfer_checkpoint_files"
        ckpt_list = self.file_list(ckpt_cmd)
        if ckpt_list is None:
            ckpt_cmd = "transfer_output_files"
            ckpt_list = self.file_list(ckpt_cmd)
        list_line = sub.line_of(ckpt_cmd) or inv.line
        raw = [x.strip() for x in ckpt_list or []]
        normed = [_norm(x) for x in raw]
        preserve = (sub.get("preserve_relative_paths") or "").strip().lower() in (
            "true",
            "yes",
            "1",
        )
        if "/" in store and not preserve:
            self.add(
                "store-nested-path",
                inv.line,
                f"--store {cfg.store}: HTCondor uploads a nested path to the top of the spool and "
                "brings "
                f"it back as {posixpath.basename(store)}, where the supervisor does not look",
                "use a store directly in the sandbox (the default checkpoint.atomic), or set "
                "preserve_relative_paths = true",
            )
        if store in normed:
            slashed = [x for x in raw if _norm(x) == store and x.endswith("/")]
            if slashed:
                self.add(
                    "store-trailing-slash",
                    list_line,
                    f"{ckpt_cmd} lists {slashed[0]}: with the trailing slash HTCondor transfers "
                    "the "
                    "directory's contents, and the next start finds no store",
                    f"write {store} without the slash",
                )
        elif not wants:
            pass  # a supervisor with no checkpoint trigger never writes a store
        elif ckpt_list is None:
            self.add(
                "store-not-transferred",
                0,
                "neither transfer_checkpoint_files nor transfer_output_files is set: HTCondor "
                "then "
                f"uploads only changed top-level files, never the store directory {store}",
                f"add transfer_checkpoint_files = {store}",
            )
        else:
            self.add(
                "store-not-transferred",
                list_line,
                f"{ckpt_cmd} does not list the store {store}: the committed checkpoint is never "
                "uploaded "
                "and every restart begins from scratch",
                f"add {store} to {ckpt_cmd}",
            )
        ckpt_paths = {_norm(p) for p in cfg.checkpoint}
        listed = [x for x in normed if x in ckpt_paths]
        if listed and ckpt_cmd == "transfer_checkpoint_files":
            self.add(
                "checkpoint-paths-listed",
                list_line,
                f"{ckpt_cmd} lists {', '.join(listed)}, a working checkpoint file the store "
                "already carries: the commit moves it into the store, the upload of the missing "
                "file fails and HTCondor holds the job (code 36, \"Starter failed to upload "
                "checkpoint\")",
                f"list only the store: {ckpt_cmd} = {store}",
            )

        # what HTCondor uploads at an eviction (only with ON_EXIT_OR_EVICT: the output list)
        outputs = self.file_list("transfer_output_files")
        out_normed = [_norm(x) for x in outputs or []]
        out_line = sub.line_of("transfer_output_files")
        on_evict = when == "ON_EXIT_OR_EVICT"
        when_line = sub.line_of("when_to_transfer_output")
        if on_evict and ckpt_paths:
            if outputs is None:
                top = sorted(p for p in ckpt_paths if "/" not in p)
                if top:
                    self.add(
                        "checkpoint-uploaded-at-evict",
                        when_line,
                        "ON_EXIT_OR_EVICT with no transfer_output_files uploads every new or "
                        f"changed top-level file at an eviction, the working {', '.join(top)} "
                        "included, maybe half written; with no store yet the next execution "
                        "starts from that torn copy",
                        "drop when_to_transfer_output = ON_EXIT_OR_EVICT (checkpoints are "
                        "uploaded without it), or write an explicit transfer_output_files that "
                        "names no checkpoint path",
                    )
            else:
                uploaded = sorted(
                    p
                    for p in ckpt_paths
                    if any(p == o or p.startswith(o + "/") for o in out_normed if o)
                )
                if uploaded:
                    self.add(
                        "checkpoint-uploaded-at-evict",
                        out_line,
                        f"transfer_output_files lists {', '.join(uploaded)}, a working checkpoint "
                        "file, and ON_EXIT_OR_EVICT uploads that list at every eviction, maybe "
                        "half written; with no store yet the next execution starts from the torn "
                        "copy",
                        "drop when_to_transfer_output = ON_EXIT_OR_EVICT (the file still comes "
                        "back at the job's end), or take the checkpoint paths out of "
                        "transfer_output_files",
                    )
        inputs_normed = {_norm(x) for x in self.file_list("transfer_input_files") or []}
        if store in out_normed and wants and store not in inputs_normed:
            self.add(
                "store-output-missing",
                out_line,
                f"transfer_output_files lists the store {store}, which exists only after the "
                "first commit: a job that ends"
                + (" or is evicted (ON_EXIT_OR_EVICT)" if on_evict else "")
                + " before it is held (code 12, subcode 2, \"No such file or directory\")",
                f"create it empty next to the submit file (mkdir {store}) and add it to "
                "transfer_input_files, or take it out of transfer_output_files",
            )
        if cfg.checkpoint_on_evict and not (on_evict and store in out_normed):
            self.add(
                "evict-commit-not-uploaded",
                out_line or when_line or inv.line,
                f"--checkpoint-on-evict {cfg.checkpoint_on_evict:g}: at eviction HTCondor "
                + (
                    "uploads nothing without when_to_transfer_output = ON_EXIT_OR_EVICT"
                    if not on_evict
                    else "uploads the output list "
                    f"({'changed top-level files' if outputs is None else 'transfer_output_files'}"
                    f"), which does not hold the store {store}"
                )
                + ": the commit made during the eviction is lost",
                f"see docs/howto/checkpoint-on-eviction.md: ON_EXIT_OR_EVICT, {store} in "
                "transfer_output_files and shipped empty in transfer_input_files; or drop "
                "--checkpoint-on-evict",
            )
        self._evict_outputs(when, ckpt_paths | {store})
        self._hold_policy()
        self._shell_without_exec(program, cfg)
        if cfg.dmtcp and "microarch" not in (sub.get("requirements") or "").lower():
            from ..dmtcp import microarch

            self.add("dmtcp-no-microarch", sub.line_of("requirements") or inv.line,
                     "--dmtcp: no requirement on Microarch; a DMTCP image holds the CPU's state and "
                     "crashes on a machine without its instructions",
                     f'requirements = (Microarch == "{microarch()}") (the family of the machines you '
                     "run on: condor_status -af Microarch)")
        self._vacate(cfg, vacate, inv)

    def _vacate(self, cfg: config.RunConfig, vacate: Optional[int], inv: Invocation) -> None:
        """The vacate time is min(job_max_vacate_time, MachineMaxVacateTime (600 by default)).
        The supervisor derives its default kill grace from it; only values the user gave
        (--kill-grace, --checkpoint-on-evict) can fail to fit."""
        explicit_grace = "kill_grace" in cfg.sources
        budget = cfg.checkpoint_on_evict or 0.0
        if not explicit_grace and not budget:
            return
        needed = (cfg.kill_grace if explicit_grace else 0.0) + budget
        given = " + ".join(
            ([f"--kill-grace {cfg.kill_grace:g}"] if explicit_grace else [])
            + ([f"--checkpoint-on-evict {budget:g}"] if budget else [])
        )
        line = self.sub.line_of("job_max_vacate_time")
        if vacate is None:
            if needed + VACATE_MARGIN > DEFAULT_MACHINE_VACATE:
                self.add(
                    "vacate-too-short",
                    0,
                    "no job_max_vacate_time: the machine's MachineMaxVacateTime (600 s by "
                    f"default, often less) applies, shorter than {given} = {needed:g} s plus "
                    "room for the eviction upload",
                    "lower --kill-grace/--checkpoint-on-evict",
                )
            return
        effective = min(float(vacate), DEFAULT_MACHINE_VACATE)
        capped = (
            " (capped by the machine's MachineMaxVacateTime, 600 s by default)"
            if vacate > DEFAULT_MACHINE_VACATE
            else ""
        )
        if needed > effective or (not explicit_grace and needed >= effective):
            self.add(
                "supervisor-refuses",
                line or inv.line,
                f"the supervisor would exit 64 at every start: {given} do not fit in the vacate "
                f"time {effective:g} s{capped}; HTCondor would SIGKILL the tree first and upload "
                "nothing",
                f"job_max_vacate_time = {vacate_time(cfg.kill_grace if explicit_grace else 0.0, budget)}"
                ", or lower the values you gave",
            )
        elif effective < needed + VACATE_MARGIN:
            self.add(
                "vacate-too-short",
                line,
                f"job_max_vacate_time = {vacate}{capped} leaves less than {VACATE_MARGIN:g} s "
                f"beyond {given} = {needed:g} s: HTCondor may SIGKILL the tree mid-commit, and "
                "the eviction upload needs time too",
                f"job_max_vacate_time = {vacate_time(cfg.kill_grace if explicit_grace else 0.0, budget)}"
                ", or lower the values you gave",
            )

    def _build(
        self, args: argparse.Namespace, program: list[str], inv: Invocation
    ) -> Optional[config.RunConfig]:
        """``config.build`` as on the execute node: a job ad from the submit file, and the
        CKPT_* variables of its environment."""
        sub = self.sub
        env: dict[str, str] = {}
        for name in ("environment", "env"):
            value = sub.get(name)
            if value is not None:
                try:
                    env = parse_environment(value, where=f"{sub.path}:{sub.line_of(name)}: {name}")
                except SubmitFileError as exc:
                    self.add(
                        "syntax", sub.line_of(name), str(exc), "fix the quoting of environment"
                    )
        env = {k: v for k, v in env.items() if k.startswith(config.ENV_PREFIX)}
        ad: dict[str, object] = {}
        code = sub.get("checkpoint_exit_code")
        if code is not None and code.strip().lstrip("-").isdigit():
            ad["SuccessCheckpointExitCode"] = int(code)
        for command in ("kill_sig", "remove_kill_sig"):
            text = sub.get(command)
            if text is not None:
                ad[attributes.SUBMIT_COMMANDS[command]] = text.strip()
        # JobMaxVacateTime is left out: check reasons about the vacate time itself (_vacate),
        # counting only values the user gave; run derives its default grace from it.
        ad = attributes.with_attrs(ad, sub.attrs(), skip=("jobmaxvacatetime",))
        ns = argparse.Namespace(**vars(args))
        ns.program = program
        with tempfile.TemporaryDirectory() as scratch:
            ad_path = os.path.join(scratch, ".job.ad")
            with contextlib.suppress(ValueError):  # a bad attribute name: no ad, as no job
                Path(ad_path).write_text(format_ad(ad))
            env.update({"_CONDOR_SCRATCH_DIR": scratch, "_CONDOR_JOB_AD": ad_path})
            try:
                return config.build(ns, environ=env)
            except ConfigError as exc:
                vacate_line = sub.line_of("job_max_vacate_time")
                self.add(
                    "supervisor-refuses",
                    vacate_line if "JobMaxVacateTime" in str(exc) and vacate_line else inv.line,
                    f"the supervisor would exit 64 at every start: {exc}",
                    "fix the options (try them locally with ckpt-supervisor dry-run)",
                )
                return None


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

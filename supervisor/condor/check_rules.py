"""The rules of ``ckpt-supervisor check`` (:mod:`supervisor.condor.check`): one function per rule
or group of rules, called by :meth:`Checker.run <supervisor.condor.check.Checker.run>` in a fixed
order. Each takes the :class:`~supervisor.condor.check.Checker` as its context: the submit file,
the ``-- RUN OPTIONS`` words, the helpers that read attributes as HTCondor does, and ``add``, which
records a finding.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .. import PROG, config, exitstatus
from ..errors import ConfigError, SubmitFileError
from ..jobad import format_ad
from ..signals import signal_name
from . import attributes
from .check import (
    _RESERVED,
    _SHELLS,
    DEFAULT_MACHINE_VACATE,
    Invocation,
    _norm,
    find_invocation,
    run_option_parser,
)
from .snippet import PYZ_NAME, VACATE_MARGIN, vacate_time
from .submit import parse_arguments, parse_environment

if TYPE_CHECKING:
    from .check import Checker


@dataclass
class Declared:
    """What the submit file declares about checkpoints, read as HTCondor reads it."""

    code: Optional[int]  # checkpoint_exit_code
    code_line: int
    legacy_code: Optional[int]  # +SuccessCheckpointExitCode
    want_ft: Optional[bool]
    by_signal: Optional[bool]
    exit_sig: Optional[int]
    want_sig: Optional[bool]
    ckpt_sig_text: Optional[str]
    kill_sig: int
    vacate: Optional[int]
    success: Optional[int]
    success_line: int
    when: str  # when_to_transfer_output, upper case

    @property
    def effective_code(self) -> Optional[int]:
        """The attribute wins over the command (it is written into the ad after it)."""
        return self.legacy_code if self.legacy_code is not None else self.code

    @property
    def ft_on(self) -> bool:
        return self.code is not None or bool(self.want_ft)


def read_declaration(ck: Checker) -> Declared:
    """The checkpoint settings of the submit file; a value that cannot be read is a finding."""
    sub = ck.sub
    code_line = sub.line_of("checkpoint_exit_code")
    code = ck.int_value(sub.get("checkpoint_exit_code"), "checkpoint_exit_code", code_line)
    legacy_code = ck.int_attr("SuccessCheckpointExitCode")
    want_ft = ck.bool_attr("WantFTOnCheckpoint")
    by_signal = ck.bool_attr("SuccessCheckpointExitBySignal")
    exit_sig = ck.exit_signal_value()
    want_sig = ck.bool_attr("WantCheckpointSignal")
    ckpt_sig_text = ck.attr("CheckpointSig")
    ckpt_sig = ck.signal_value(ckpt_sig_text, "+CheckpointSig", ck.aline("CheckpointSig"))
    kill_line = sub.line_of("kill_sig")
    kill_sig = ck.signal_value(sub.get("kill_sig"), "kill_sig", kill_line) or 15
    vacate_line = sub.line_of("job_max_vacate_time")
    vacate = ck.int_value(sub.get("job_max_vacate_time"), "job_max_vacate_time", vacate_line)
    success_line = sub.line_of("success_exit_code")
    success = ck.int_value(sub.get("success_exit_code"), "success_exit_code", success_line)
    # ON_EXIT_OR_EVICT is not needed for checkpoint uploads (they happen whatever
    # when_to_transfer_output says); it adds an upload of the output list at every eviction.
    when = (sub.get("when_to_transfer_output") or "ON_EXIT").strip().upper()
    del ckpt_sig  # read for its syntax finding only
    return Declared(
        code, code_line, legacy_code, want_ft, by_signal, exit_sig, want_sig, ckpt_sig_text,
        kill_sig, vacate, success, success_line, when,
    )


def checkpoint_code(ck: Checker, d: Declared) -> None:
    """The checkpoint exit code: zero, equal to success_exit_code, given twice, or given
    without +WantFTOnCheckpoint."""
    code, code_line, legacy_code = d.code, d.code_line, d.legacy_code
    effective_code, by_signal, want_ft = d.effective_code, d.by_signal, d.want_ft
    success, success_line = d.success, d.success_line
    effective_line = (
        ck.aline("SuccessCheckpointExitCode") if legacy_code is not None else code_line
    )
    if effective_code is not None and not by_signal:
        if effective_code == 0:
            text = ck.attr("SuccessCheckpointExitCode") if legacy_code is not None else None
            why = (f"+SuccessCheckpointExitCode = {text} is not a number, which HTCondor's "
                   "LookupInteger reads as 0" if text is not None and text.strip() not in ("0", "false")
                   else "the checkpoint exit code is 0")
            ck.add(
                "checkpoint-code-zero",
                effective_line,
                f"{why}: HTCondor would treat every successful exit "
                "as a checkpoint and restart the job forever (the supervisor refuses to start: "
                "exit 64)",
                "write a bare integer: +SuccessCheckpointExitCode = 85" if text is not None
                else "use another code; 85 is the usual one (checkpoint_exit_code = 85)",
            )
        elif success is not None and effective_code == success:
            ck.add(
                "checkpoint-code-is-success",
                effective_line,
                f"the checkpoint exit code {effective_code} equals success_exit_code "
                f"(line {success_line}): the job could never finish",
                "give the checkpoint and the success distinct codes (85 is usual for "
                "checkpoints)",
            )
    if legacy_code is not None and code is not None and legacy_code != code:
        ck.add(
            "checkpoint-code-conflict",
            ck.aline("SuccessCheckpointExitCode"),
            f"checkpoint_exit_code = {code} (line {code_line}) but +SuccessCheckpointExitCode "
            f"= {legacy_code}: HTCondor applies the attribute last, so the job's checkpoint "
            f"code is {legacy_code}",
            "keep one of the two (checkpoint_exit_code = N is the current form)",
        )
    if legacy_code is not None and code is None and not want_ft:
        ck.add(
            "code-without-want-ft",
            ck.aline("SuccessCheckpointExitCode"),
            "+SuccessCheckpointExitCode is set but +WantFTOnCheckpoint is not true and "
            "there is no checkpoint_exit_code: an exit with that code ends the job, "
            "nothing is uploaded as a checkpoint",
            "add +WantFTOnCheckpoint = true, or write checkpoint_exit_code = N instead "
            "(HTCondor 8.9.3+)",
        )


def checkpoint_settings(ck: Checker, d: Declared) -> None:
    """BySignal without the signal, CheckpointSig without WantCheckpointSignal, no setting."""
    by_signal, want_ft, want_sig, ckpt_sig_text = d.by_signal, d.want_ft, d.want_sig, d.ckpt_sig_text
    declared = bool(by_signal) or d.effective_code is not None
    if by_signal and ck.attr("SuccessCheckpointExitSignal") is None:
        ck.add(
            "by-signal-without-signal",
            ck.aline("SuccessCheckpointExitBySignal"),
            "+SuccessCheckpointExitBySignal is true but +SuccessCheckpointExitSignal is not "
            "set: "
            "no death by signal matches",
            "add +SuccessCheckpointExitSignal = N (the signal number)",
        )
    if ckpt_sig_text is not None and not want_sig:
        ck.add(
            "checkpoint-sig-without-want",
            ck.aline("CheckpointSig"),
            "+CheckpointSig is set but +WantCheckpointSignal is not true: the execute point "
            "never sends the checkpoint signal",
            "add +WantCheckpointSignal = true, or remove +CheckpointSig",
        )
    any_setting = declared or want_ft is not None or want_sig is not None
    if not any_setting:
        ck.add(
            "no-checkpoint-setting",
            0,
            "no checkpoint_exit_code, +SuccessCheckpointExitCode, BySignal or "
            "+WantCheckpointSignal setting: HTCondor will never upload a checkpoint",
            "add checkpoint_exit_code = 85 and transfer_checkpoint_files; "
            "ckpt-supervisor submit-snippet writes them",
        )


def find_supervisor(ck: Checker) -> tuple[Optional[Invocation], str]:
    """How ``executable``/``arguments`` start the supervisor (None: they do not), and the
    executable."""
    sub = ck.sub
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
                ck.add("syntax", sub.line_of(name), str(exc), "fix the quoting of arguments")
    inv = find_invocation(sub, executable, arguments)
    if inv is None and ck.extra:
        inv = Invocation("unknown", None, False, [], sub.line_of("executable"))
    return inv, executable


def parse_run_options(ck: Checker, inv: Invocation) -> Optional[tuple[argparse.Namespace, list[str]]]:
    """The run options of the file's arguments, with the ``-- RUN OPTIONS`` words on top, and
    the PROGRAM; None (and a finding) when they do not parse."""
    parser = run_option_parser()
    try:
        args = parser.parse_args(inv.run_words)
        if ck.extra:
            extra = parser.parse_args(
                ck.extra if "--" in ck.extra else [*ck.extra, "--", "PROGRAM"]
            )
            for key, value in vars(extra).items():
                if key == "program" and args.program:
                    continue  # the file's own PROGRAM, when it shows one, is kept
                if value not in (None, 0):
                    setattr(args, key, value)
    except ConfigError as exc:
        ck.add(
            "supervisor-refuses",
            inv.line,
            f"the run options do not parse: {exc}",
            f"fix the arguments; see {PROG} run --help",
        )
        return None
    program = list(args.program or [])
    if program and program[0] == "--":
        program = program[1:]
    return args, program


def supervisor(ck: Checker, inv: Invocation, d: Declared) -> None:
    """The rules about the supervisor the submit file starts, in order."""
    parsed = parse_run_options(ck, inv)
    if parsed is None:
        return
    args, program = parsed
    inputs = [_norm(x) for x in (ck.file_list("transfer_input_files") or [])]
    in_line = ck.sub.line_of("transfer_input_files") or inv.line
    shipping(ck, inv, args, program, inputs=inputs, in_line=in_line)
    config_option(ck, args, inputs, in_line)
    cfg = build(ck, args, program, inv)
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
    exit_codes(ck, cfg, inv, d, wants)
    store, ckpt_paths = store_transfer(ck, cfg, inv, wants)
    eviction_upload(ck, cfg, inv, when=d.when, store=store, ckpt_paths=ckpt_paths, wants=wants)
    evict_outputs(ck, d.when, ckpt_paths | {store})
    retry_outputs(ck, ckpt_paths | {store})
    hold_policy(ck)
    shell_without_exec(ck, program, cfg)
    dmtcp_microarch(ck, cfg, inv)
    vacate_fits(ck, cfg, d.vacate, inv)


def shipping(
    ck: Checker, inv: Invocation, args: argparse.Namespace, program: list[str], *, inputs: list[str],
    in_line: int,
) -> None:
    """The supervisor and the program's files: transferred, or installed on every node."""
    sub = ck.sub
    should = (sub.get("should_transfer_files") or "YES").strip().upper()
    if inv.kind == "pyz" and not inv.pyz_is_executable and inv.pyz is not None:
        if _norm(inv.pyz) not in inputs and posixpath.basename(inv.pyz) not in [
            posixpath.basename(x) for x in inputs
        ]:
            if os.path.isabs(inv.pyz) or should == "NO":
                ck.add(
                    "supervisor-installed",
                    inv.line,
                    f"{inv.pyz} is not transferred: it must exist at that path on every "
                    "execute node",
                    f"add {posixpath.basename(inv.pyz)} to transfer_input_files and name it "
                    "without a directory in arguments",
                )
            else:
                ck.add(
                    "supervisor-not-transferred",
                    in_line,
                    f"arguments run {inv.pyz} but transfer_input_files does not list it: the "
                    "job "
                    "fails at its first start",
                    f"add {inv.pyz} to transfer_input_files (or write executable = {inv.pyz})",
                )
    elif inv.kind in ("installed", "module"):
        what = PROG if inv.kind == "installed" else "python -m supervisor"
        ck.add(
            "supervisor-installed",
            inv.line,
            f"the job runs {what}, which must be installed on every execute node",
            f"ship the single file instead: executable = {PYZ_NAME} "
            f"(build it with python3 -m supervisor.build_pyz)",
        )
    if getattr(args, "sandbox", None):
        ck.add(
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
            or not (ck.submit_dir / word).is_file()
        ):
            continue
        if _norm(word) not in inputs and word != sub.get("executable"):
            ck.add(
                "program-not-transferred",
                in_line,
                f"{word} is a file next to the submit file but transfer_input_files does not "
                "list it",
                f"add {word} to transfer_input_files (unless the execute nodes have it at that "
                "path)",
            )


def config_option(ck: Checker, args: argparse.Namespace, inputs: list[str], in_line: int) -> None:
    """--config: transferred; made absolute for the build, dropped when it is not there."""
    config_file = getattr(args, "config", None)
    if config_file and not os.path.isabs(config_file):
        if _norm(config_file) not in inputs:
            ck.add(
                "config-not-transferred",
                in_line,
                f"--config {config_file} is not in transfer_input_files: the supervisor exits "
                "64",
                f"add {config_file} to transfer_input_files",
            )
        args.config = str(ck.submit_dir / config_file)
        if not Path(args.config).is_file():
            args.config = None  # reported above or a file made elsewhere; do not fail here


def exit_codes(ck: Checker, cfg: config.RunConfig, inv: Invocation, d: Declared, wants: bool) -> None:
    """What the supervisor reports (an exit code or a death by signal, the kill signal) versus
    what the submit file declares."""
    sub = ck.sub
    effective_code, by_signal, exit_sig, ft_on = d.effective_code, bool(d.by_signal), d.exit_sig, d.ft_on
    kill_sig = d.kill_sig
    code_line = sub.line_of("checkpoint_exit_code") or ck.aline("SuccessCheckpointExitCode")
    if cfg.exit_signal is not None:
        if not (by_signal and exit_sig == cfg.exit_signal):
            ck.add(
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
            ck.add(
                "checkpoint-code-missing",
                code_line or inv.line,
                f"the supervisor exits {cfg.exit_code} after each committed checkpoint, but "
                "the submit "
                "file declares no checkpoint exit code: HTCondor would take it as the job's "
                "final exit",
                f"add checkpoint_exit_code = {cfg.exit_code}",
            )
    elif cfg.exit_code != effective_code:
        ck.add(
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
        ck.add(
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
        ck.add(
            "kill-sig-mismatch",
            inv.line,
            f"--kill-signal is {signal_name(cfg.kill_signal)} but kill_sig is "
            f"{signal_name(kill_sig)}: "
            "HTCondor's soft kill would be passed on as an ordinary signal, with no grace or "
            "checkpoint on eviction",
            "drop --kill-signal (it defaults to the job's KillSig) or make them equal",
        )


def store_transfer(ck: Checker, cfg: config.RunConfig, inv: Invocation, wants: bool) -> tuple[str, set[str]]:
    """The store in the transfer lists; returns the store and the working checkpoint paths."""
    sub = ck.sub
    store = _norm(cfg.store)
    ckpt_cmd = "transfer_checkpoint_files"
    ckpt_list = ck.file_list(ckpt_cmd)
    if ckpt_list is None:
        ckpt_cmd = "transfer_output_files"
        ckpt_list = ck.file_list(ckpt_cmd)
    list_line = sub.line_of(ckpt_cmd) or inv.line
    raw = [x.strip() for x in ckpt_list or []]
    normed = [_norm(x) for x in raw]
    preserve = (sub.get("preserve_relative_paths") or "").strip().lower() in (
        "true",
        "yes",
        "1",
    )
    if "/" in store and not preserve:
        ck.add(
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
            ck.add(
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
        ck.add(
            "store-not-transferred",
            0,
            "neither transfer_checkpoint_files nor transfer_output_files is set: HTCondor "
            "then "
            f"uploads only changed top-level files, never the store directory {store}",
            f"add transfer_checkpoint_files = {store}",
        )
    else:
        ck.add(
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
        ck.add(
            "checkpoint-paths-listed",
            list_line,
            f"{ckpt_cmd} lists {', '.join(listed)}, a working checkpoint file the store "
            "already carries: the commit moves it into the store, the upload of the missing "
            "file fails and HTCondor holds the job (code 36, \"Starter failed to upload "
            "checkpoint\")",
            f"list only the store: {ckpt_cmd} = {store}",
        )
    return store, ckpt_paths


def eviction_upload(
    ck: Checker, cfg: config.RunConfig, inv: Invocation, *, when: str, store: str, ckpt_paths: set[str],
    wants: bool,
) -> None:
    """What HTCondor uploads at an eviction (only with ON_EXIT_OR_EVICT: the output list)."""
    sub = ck.sub
    outputs = ck.file_list("transfer_output_files")
    out_normed = [_norm(x) for x in outputs or []]
    out_line = sub.line_of("transfer_output_files")
    on_evict = when == "ON_EXIT_OR_EVICT"
    when_line = sub.line_of("when_to_transfer_output")
    if on_evict and ckpt_paths:
        if outputs is None:
            top = sorted(p for p in ckpt_paths if "/" not in p)
            if top:
                ck.add(
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
                ck.add(
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
    inputs_normed = {_norm(x) for x in ck.file_list("transfer_input_files") or []}
    if store in out_normed and wants and store not in inputs_normed:
        ck.add(
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
        ck.add(
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


def dmtcp_microarch(ck: Checker, cfg: config.RunConfig, inv: Invocation) -> None:
    """--dmtcp: a DMTCP image holds the CPU's state; the job must name a micro-architecture."""
    sub = ck.sub
    if cfg.dmtcp and "microarch" not in (sub.get("requirements") or "").lower():
        from ..dmtcp import microarch

        ck.add("dmtcp-no-microarch", sub.line_of("requirements") or inv.line,
                 "--dmtcp: no requirement on Microarch; a DMTCP image holds the CPU's state and "
                 "crashes on a machine without its instructions",
                 f'requirements = (Microarch == "{microarch()}") (the family of the machines you '
                 "run on: condor_status -af Microarch)")


def _outputs_maybe_missing(ck: Checker, known: set[str]) -> list[str]:
    """The files of transfer_output_files that need not exist before the job's end: not shipped
    as inputs, not in ``known`` (entries other rules report)."""
    inputs = {_norm(x) for x in ck.file_list("transfer_input_files") or []}
    outputs = (_norm(o) for o in ck.file_list("transfer_output_files") or [])
    return [x for x in outputs if x and x not in inputs | known]


def evict_outputs(ck: Checker, when: str, known: set[str]) -> None:
    """ON_EXIT_OR_EVICT: each file of transfer_output_files must exist at every eviction,
    or the job is held (code 12); ``known`` are entries reported by other rules."""
    missing = _outputs_maybe_missing(ck, known) if when == "ON_EXIT_OR_EVICT" else []
    if missing:
        ck.add(
            "evict-output-missing",
            ck.sub.line_of("transfer_output_files"),
            f"with when_to_transfer_output = ON_EXIT_OR_EVICT, HTCondor uploads "
            f"{', '.join(missing)} at every eviction and holds the job (code 12, subcode 2) "
            "when one does not exist yet",
            "drop ON_EXIT_OR_EVICT (checkpoints are uploaded without it), or make sure each "
            "listed file exists from the start (ship an empty one in transfer_input_files)",
        )


RETRY_COMMANDS = ("max_retries", "retry_until", "success_exit_code", "on_exit_remove")


def retry_outputs(ck: Checker, known: set[str]) -> None:
    """A retry policy: HTCondor transfers transfer_output_files at every end of the job, a
    failed one too, before OnExitRemove decides on a retry; a listed file that the failed run
    has not written holds the job (code 12); ``known`` are entries reported by other rules."""
    policy = next((name for name in RETRY_COMMANDS if ck.sub.get(name) is not None), None)
    missing = _outputs_maybe_missing(ck, known) if policy is not None else []
    if missing:
        ck.add(
            "retry-output-missing",
            ck.sub.line_of("transfer_output_files"),
            f"{policy} retries a failed run, but HTCondor first transfers {', '.join(missing)} "
            "at that exit and holds the job (code 12, subcode 2) when one was not written yet",
            "list only files that exist at every exit (ship an empty one in "
            "transfer_input_files), or leave transfer_output_files out",
        )


def hold_policy(ck: Checker) -> None:
    """The supervisor's own failures (64, 70, 74, 76) should hold the job, keeping SPOOL."""
    expr = ck.sub.get("on_exit_hold")
    statuses = [exitstatus.EXIT_USAGE, exitstatus.EXIT_INTERNAL, exitstatus.EXIT_STORE]
    named = set() if expr is None else {int(n) for n in re.findall(r"(?<![\w.])\d+", expr)}
    if expr is None or not {exitstatus.EXIT_INTERNAL, exitstatus.EXIT_STORE} <= named:
        from .snippet import hold_policy_lines

        ck.add(
            "no-hold-policy",
            ck.sub.line_of("on_exit_hold"),
            (
                "no on_exit_hold"
                if expr is None
                else "on_exit_hold does not name the supervisor's statuses 70 and 74"
            )
            + f": when the supervisor fails ({', '.join(map(str, statuses))}: usage, "
            "internal, store I/O) HTCondor ends the job and throws away its checkpoint",
            "add the lines submit-snippet writes: " + " ; ".join(hold_policy_lines()[1:2]),
        )


def shell_without_exec(ck: Checker, program: list[str], cfg: config.RunConfig) -> None:
    """A shell wrapper that does not exec its last command dies from a job signal sent to
    the process group (issue 13.2)."""
    if cfg.signal_to != "group" or not (cfg.job_signal is not None or cfg.trigger_signal):
        return
    if not program:
        return
    script = program[0]
    if posixpath.basename(script) in _SHELLS and len(program) > 1 and program[1] != "-c":
        script = program[1]
    path = ck.submit_dir / script
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
    ck.add(
        "shell-without-exec",
        ck.sub.line_of("arguments") or ck.sub.line_of("executable"),
        f"{script} is a shell script whose last command ({commands[-1][:40]}) is not "
        f"exec'ed: the job signal {signal_name(sig)} goes to the whole process group and "
        "kills the shell, so the run ends with 128+N instead of a checkpoint",
        f"start the last command with exec in {script}, or trap {signal_name(sig)} there, "
        "or give the supervisor --signal-to child",
    )


def wrapper_hint(ck: Checker, executable: str) -> None:
    path = ck.submit_dir / executable
    try:
        if path.is_file() and path.stat().st_size < 65536:
            text = path.read_text(errors="replace")
            if PROG in text or "-m supervisor" in text or ".pyz" in text:
                ck.add(
                    "wrapper-not-read",
                    ck.sub.line_of("executable"),
                    f"{executable} seems to start the supervisor; its run options were not "
                    "checked",
                    f"run: {PROG} check {ck.sub.path.name} -- RUN OPTIONS (the ones the "
                    "script uses)",
                )
    except OSError:
        pass


def vacate_fits(ck: Checker, cfg: config.RunConfig, vacate: Optional[int], inv: Invocation) -> None:
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
    line = ck.sub.line_of("job_max_vacate_time")
    if vacate is None:
        if needed + VACATE_MARGIN > DEFAULT_MACHINE_VACATE:
            ck.add(
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
        ck.add(
            "supervisor-refuses",
            line or inv.line,
            f"the supervisor would exit 64 at every start: {given} do not fit in the vacate "
            f"time {effective:g} s{capped}; HTCondor would SIGKILL the tree first and upload "
            "nothing",
            f"job_max_vacate_time = {vacate_time(cfg.kill_grace if explicit_grace else 0.0, budget)}"
            ", or lower the values you gave",
        )
    elif effective < needed + VACATE_MARGIN:
        ck.add(
            "vacate-too-short",
            line,
            f"job_max_vacate_time = {vacate}{capped} leaves less than {VACATE_MARGIN:g} s "
            f"beyond {given} = {needed:g} s: HTCondor may SIGKILL the tree mid-commit, and "
            "the eviction upload needs time too",
            f"job_max_vacate_time = {vacate_time(cfg.kill_grace if explicit_grace else 0.0, budget)}"
            ", or lower the values you gave",
        )


def build(
    ck: Checker, args: argparse.Namespace, program: list[str], inv: Invocation
) -> Optional[config.RunConfig]:
    """``config.build`` as on the execute node: a job ad from the submit file, and the
    CKPT_* variables of its environment."""
    sub = ck.sub
    env: dict[str, str] = {}
    for name in ("environment", "env"):
        value = sub.get(name)
        if value is not None:
            try:
                env = parse_environment(value, where=f"{sub.path}:{sub.line_of(name)}: {name}")
            except SubmitFileError as exc:
                ck.add(
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
    # JobMaxVacateTime is left out: check reasons about the vacate time itself (vacate_fits),
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
            message, attr = _job_ad_message(str(exc), ad_path, list(ad))
            line, written = _attr_source(ck, attr) if attr is not None else (0, "")
            if attr is not None and any(
                f.line == line and f.code in ("checkpoint-code-zero", "exit-signal-not-number")
                for f in ck.findings
            ):
                return None  # the same mistake, already reported with its own rule
            vacate_line = sub.line_of("job_max_vacate_time")
            if "JobMaxVacateTime" in message and vacate_line:
                line = vacate_line
            ck.add(
                "supervisor-refuses",
                line or inv.line,
                f"the supervisor would exit 64 at every start: {message}",
                f"fix {written}: the job ad's {attr} comes from it" if written
                else "fix the options (try them locally with ckpt-supervisor dry-run)",
            )
            return None


def _job_ad_message(message: str, ad_path: str, names: list[str]) -> tuple[str, Optional[str]]:
    """``message`` without the temporary job ad's path, which means nothing to the user; and the
    attribute it names (the ad has one ``Name = value`` line per attribute, in order)."""
    attr: Optional[str] = None
    m = re.search(re.escape(f"job ad {ad_path}") + r"(?: line (\d+))?: ", message)
    if m is None:
        return message.replace(f"job ad {ad_path}", "the job ad"), None
    if m.group(1) is not None and 1 <= int(m.group(1)) <= len(names):
        attr = names[int(m.group(1)) - 1]
    return message[: m.start()] + message[m.end():], attr


def _attr_source(ck: Checker, attr: str) -> tuple[int, str]:
    """Where a job ad attribute comes from in the submit file: the line and the name as written
    there (its ``+Attr`` line, else the command condor_submit turns into it); (0, "") if none."""
    line = ck.aline(attr)
    if line:
        return line, "+" + attr
    for command, name in attributes.SUBMIT_COMMANDS.items():
        if name.lower() == attr.lower() and ck.sub.line_of(command):
            return ck.sub.line_of(command), command
    return 0, ""

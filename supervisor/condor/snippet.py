"""``ckpt-supervisor submit-snippet [run options] -- PROGRAM ARGS``: the submit-file lines to match.

The run options are the real ones (``supervisor.options.RUN``) and are validated the way
``run`` validates them, so a snippet is never printed for a command line that would refuse to
start. What the lines say, and why:

- ``executable = ckpt-supervisor.pyz`` and ``arguments = "run OPTIONS -- PROGRAM ARGS"``: the
  single-file supervisor, whose first line is ``#!/usr/bin/env python3``. HTCondor transfers the
  executable and makes it executable; the kernel runs the ``python3`` found on the job's PATH
  (or, with no PATH, in ``/bin:/usr/bin``), which becomes the job's main process, so KillSig and
  CheckpointSig reach the supervisor. ``--python PY`` writes ``executable = /usr/bin/env`` with
  ``transfer_executable = false`` and ``arguments = "PY ckpt-supervisor.pyz run ..."`` instead,
  for a node whose right interpreter is not ``python3``; ``--installed`` uses a
  ``ckpt-supervisor`` already installed on the execute nodes.
- ``checkpoint_exit_code`` (or with ``--legacy``, ``+SuccessCheckpointExitCode`` and
  ``+WantFTOnCheckpoint``); with ``--exit-signal`` the BySignal attributes instead.
- ``transfer_checkpoint_files`` names the store only: the supervisor restores the program's
  checkpoint files from it at the next start, and an atomic store is the only thing that can be
  uploaded safely at any moment. ``transfer_output_files`` names the ``--output`` files.
- No ``when_to_transfer_output = ON_EXIT_OR_EVICT``: HTCondor uploads checkpoints without it,
  and it uploads the *output* list at every eviction (torn working files included; a listed
  file that does not exist yet holds the job, code 12). Only with ``--checkpoint-on-evict``,
  whose eviction-time commit needs that upload: then the store and the ``--output`` files are
  the output list, shipped as inputs so that they exist from the start, and comment lines say
  what it costs.
- ``+WantCheckpointSignal``/``+CheckpointSig`` for the first ``--trigger-signal``; ``kill_sig``.
- ``job_max_vacate_time`` = kill grace + checkpoint-on-evict budget + ``VACATE_MARGIN``, only
  when the user gave one of them (the supervisor derives its default grace from the vacate time).
- ``on_exit_hold``/``on_exit_hold_reason``/``on_exit_hold_subcode`` for the supervisor's own
  failure statuses (:data:`HOLD_STATUSES`), so that HTCondor keeps the checkpoint in SPOOL.
- PROGRAM files it cannot ship (not in the current directory) are named on stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, Optional

from .. import PROG, config, exitstatus, options
from ..errors import ConfigError
from ..signals import signal_name

PYZ_NAME = "ckpt-supervisor.pyz"
VACATE_MARGIN = 5.0  # seconds of vacate time beyond kill grace + checkpoint-on-evict budget


def quote_new_syntax(words: Sequence[str]) -> str:
    """Words as a new-syntax ``arguments`` value (``"..."``), the inverse of
    ``submit.split_new_syntax``: a word with blanks or quotes goes in single quotes, ``'``
    doubles inside them, ``"`` doubles everywhere."""
    out = []
    for word in words:
        text = word.replace('"', '""')
        if word == "" or any(c in word for c in " \t'\""):
            text = "'" + text.replace("'", "''") + "'"
        out.append(text)
    return '"' + " ".join(out) + '"'


def option_words(args: argparse.Namespace) -> list[str]:
    """The run options given on the command line, back as flags, in the table's order."""
    words: list[str] = []
    for opt in options.RUN:
        value = getattr(args, opt.dest, None)
        if value is None:
            continue
        if opt.flag:
            words.append(f"--{opt.name}")
        elif opt.multiple:
            for item in value:
                words += [f"--{opt.name}", str(item)]
        else:
            words += [f"--{opt.name}", str(value)]
    if getattr(args, "config", None):
        words += ["--config", args.config]
    return words


def _validated(args: argparse.Namespace, program: list[str]) -> config.RunConfig:
    """``run``'s own validation, in an empty environment (no job ad, no CKPT_* variables)."""
    ns = argparse.Namespace(**vars(args))
    ns.program = program
    ns.config = None  # the file is read on the execute node; only its presence is checked here
    with tempfile.TemporaryDirectory() as scratch:
        return config.build(ns, environ={"_CONDOR_SCRATCH_DIR": scratch})


_SCRIPT_SUFFIXES = (".py", ".sh", ".pl", ".R", ".r", ".jl", ".rb", ".lua", ".tcl", ".m", ".jar")


def _local_files(words: Sequence[str], cwd: str) -> tuple[list[str], list[str]]:
    """(files, left out): relative words of PROGRAM ARGS that name files here, which must
    travel with the job; and words that look like program files (a path, or a script name)
    but are not files in ``cwd``, so the snippet cannot ship them."""
    out: list[str] = []
    left: list[str] = []
    for i, word in enumerate(words):
        if not word or word.startswith("-") or "=" in word:
            continue
        outside = os.path.isabs(word) or ".." in word.split("/")
        here = not outside and os.path.isfile(os.path.join(cwd, word))
        name = os.path.normpath(word)
        if here:
            if name not in out:
                out.append(name)
            continue
        looks_like_file = (i == 0 and "/" in word) or word.endswith(_SCRIPT_SUFFIXES)
        if outside:  # shipped only if named with --input; an installed /usr/bin/x is fine
            looks_like_file = not (i == 0 and os.path.isabs(word)) and (
                word.endswith(_SCRIPT_SUFFIXES) or os.path.isfile(os.path.join(cwd, word))
            )
        if looks_like_file and word not in left:
            left.append(word)
    return out, left


def vacate_time(kill_grace: float, checkpoint_on_evict: Optional[float]) -> int:
    return math.ceil(kill_grace + (checkpoint_on_evict or 0.0) + VACATE_MARGIN)


# The supervisor's own failures: HTCondor would end the job and discard the checkpoint in SPOOL;
# held, the job keeps it and condor_release starts it again once the cause is fixed.
HOLD_STATUSES = (exitstatus.EXIT_USAGE, exitstatus.EXIT_INTERNAL, exitstatus.EXIT_STORE,
                 exitstatus.EXIT_NO_PROGRESS)


def hold_policy_lines() -> list[str]:
    """``on_exit_hold`` for :data:`HOLD_STATUSES`, a reason naming the status, the status as
    the hold subcode (HoldReasonCode is 3, "job policy"). Verified on HTCondor 25.0."""
    codes = ", ".join(str(c) for c in HOLD_STATUSES)
    reason = '"usage or configuration error"'
    for code in HOLD_STATUSES[1:]:
        reason = (
            f'ifThenElse(ExitCode == {code}, "{exitstatus.SUPERVISOR_CODES[code]}", {reason})'
        )
    return [
        f"# hold the job (keeping its checkpoint) when the supervisor itself fails ({codes}); "
        "condor_release it once fixed",
        f"on_exit_hold = ExitBySignal =?= false && member(ExitCode, {{{codes}}})",
        f'on_exit_hold_reason = strcat("ckpt-supervisor exit status ", ExitCode, ": ", {reason}, '
        '"; see the job\'s stderr")',
        "on_exit_hold_subcode = ExitCode",
    ]


def snippet_lines(
    args: argparse.Namespace,
    program: list[str],
    *,
    cwd: Optional[str] = None,
    warn: Callable[[str], None] = lambda line: None,
) -> list[str]:
    """The submit-file lines for ``args`` (a Namespace from this command's parser); ``warn``
    receives one line for each thing the user should know (printed on stderr by the CLI)."""
    cfg = _validated(args, program)
    for out in getattr(args, "output", None) or ():
        if os.path.normpath(out) in {os.path.normpath(p) for p in cfg.checkpoint} and (
            cfg.checkpoint_on_evict
        ):
            raise ConfigError(
                f"--output {out} is a --checkpoint path: with --checkpoint-on-evict the output "
                "list is uploaded at every eviction, torn working files included; the store "
                "carries the checkpoint, leave it out"
            )
    cwd = cwd or os.getcwd()
    run_words = ["run", *option_words(args), "--", *program]
    inputs: list[str] = []
    lines = ["# --- checkpoint-supervisor: made by ckpt-supervisor submit-snippet ---"]
    pyz = args.pyz or PYZ_NAME
    if args.installed:
        lines += [
            "executable = /usr/bin/env",
            "transfer_executable = false",
            f"arguments = {quote_new_syntax([PROG, *run_words])}",
        ]
    elif args.python:
        lines += [
            "executable = /usr/bin/env",
            "transfer_executable = false",
            f"arguments = {quote_new_syntax([args.python, os.path.basename(pyz), *run_words])}",
        ]
        inputs.append(pyz)
    else:
        lines += [f"executable = {pyz}", f"arguments = {quote_new_syntax(run_words)}"]
    local, left_out = _local_files(program, cwd)
    inputs += local
    for word in left_out:
        where = (
            "outside the current directory"
            if os.path.isabs(word) or ".." in word.split("/")
            else f"not a file in {cwd}"
        )
        warn(
            f"{PROG} submit-snippet: warning: {word} is {where}, so transfer_input_files does "
            f"not list it; add it with --input {os.path.basename(word)} (and name it without a "
            "directory), or run submit-snippet where it is, unless every execute node has it at "
            "that path"
        )
    outputs = list(getattr(args, "output", None) or [])
    if cfg.checkpoint_on_evict:  # each file of the output list must exist at every eviction
        inputs += [f for f in [cfg.store, *outputs] if f not in inputs]
    if getattr(args, "config", None):
        inputs.append(args.config)
    for extra in args.input or ():
        if extra not in inputs:
            inputs.append(extra)
    if inputs:
        lines.append(f"transfer_input_files = {', '.join(inputs)}")
    lines.append("should_transfer_files = YES")

    if cfg.exit_signal is not None:
        lines += [
            "+WantFTOnCheckpoint = true",
            "+SuccessCheckpointExitBySignal = true",
            f"+SuccessCheckpointExitSignal = {cfg.exit_signal}",
        ]
    elif args.legacy:
        lines += ["+WantFTOnCheckpoint = true", f"+SuccessCheckpointExitCode = {cfg.exit_code}"]
    else:
        lines.append(f"checkpoint_exit_code = {cfg.exit_code}")
    lines.append(f"transfer_checkpoint_files = {cfg.store}")
    if cfg.checkpoint_on_evict:
        lines += [
            f"transfer_output_files = {', '.join([cfg.store, *outputs])}",
            "when_to_transfer_output = ON_EXIT_OR_EVICT",
            "# --checkpoint-on-evict: ON_EXIT_OR_EVICT uploads transfer_output_files at every",
            "# eviction, so the commit made then travels. What it costs: HTCondor holds the job",
            "# (code 12) if a listed file does not exist at an eviction or at the end, so each",
            "# one is shipped, empty, from the start: next to the submit file, run",
            f"#   {' && '.join([f'mkdir -p {cfg.store}', *(f'touch {o}' for o in outputs)])}",
            "# A working checkpoint file must never be listed there (a torn copy would be",
            "# uploaded), and the eviction upload must fit in the vacate time too.",
        ]
    elif outputs:
        lines.append(f"transfer_output_files = {', '.join(outputs)}")
    else:
        lines.append(
            "# transfer_output_files = <your result files>  (absent: every new or changed "
            "top-level file)"
        )
    if cfg.trigger_signal:
        lines += [
            "+WantCheckpointSignal = true",
            f'+CheckpointSig = "{signal_name(cfg.trigger_signal[0])}"',
        ]
    lines.append(f"kill_sig = {signal_name(cfg.kill_signal)}")
    explicit_grace = "kill_grace" in cfg.sources
    if explicit_grace or cfg.checkpoint_on_evict:
        grace = cfg.kill_grace if explicit_grace else 0.0
        lines.append(f"job_max_vacate_time = {vacate_time(grace, cfg.checkpoint_on_evict)}")
    lines += hold_policy_lines()
    if cfg.dmtcp:  # an image resumes only on the CPU family it was made on
        from ..dmtcp import microarch

        lines.append(f'requirements = (Microarch == "{microarch()}")')
    lines.append(
        "# --- end of checkpoint-supervisor lines; add output, error, log, resources, queue ---"
    )
    return lines


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "submit-snippet",
        help="print the submit-file lines that run PROGRAM under the supervisor with these options",
        usage=f"{PROG} submit-snippet [RUN OPTIONS] [--legacy] [--python PY | --installed] "
        "-- PROGRAM [ARGS...]",
        description="Print the HTCondor submit-file lines that match these run options: executable "
        "and arguments, transfer lists, the checkpoint exit code, signals and vacate time. "
        "Paste them into a submit file and verify it with 'ckpt-supervisor check'. "
        "See docs/reference/submit-snippet.md.",
    )
    options.add_run_options(p)
    options.add_arguments(p, options.SNIPPET, convert_now=True)
    p.add_argument("program", nargs=argparse.REMAINDER, metavar="PROGRAM [ARGS...]")
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    program = list(args.program or [])
    if program and program[0] == "--":
        program = program[1:]
    if not program:
        raise ConfigError(
            "no PROGRAM given: put it after --, e.g. "
            f"{PROG} submit-snippet --checkpoint state.dat -- ./sim"
        )

    def warn(line: str) -> None:
        sys.stderr.write(line + "\n")

    lines = snippet_lines(args, program, warn=warn)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0

"""``ckpt-supervisor submit-snippet [run options] -- PROGRAM ARGS``: the submit-file lines to match.

The run options are the real ones (``supervisor.config.OPTIONS``) and are validated the way
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
  uploaded safely at any moment. ``when_to_transfer_output = ON_EXIT_OR_EVICT``.
- ``+WantCheckpointSignal``/``+CheckpointSig`` for the first ``--trigger-signal``; ``kill_sig``.
- ``job_max_vacate_time`` = kill grace + checkpoint-on-evict budget + ``VACATE_MARGIN``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, Optional

from .. import PROG, config
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
    for opt in config.OPTIONS:
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


def _local_files(words: Sequence[str], cwd: str) -> list[str]:
    """Relative words of PROGRAM ARGS that name files here: they must travel with the job."""
    out = []
    for word in words:
        if not word or os.path.isabs(word) or word.startswith("-") or ".." in word.split("/"):
            continue
        name = os.path.normpath(word)
        if os.path.isfile(os.path.join(cwd, word)) and name not in out:
            out.append(name)
    return out


def vacate_time(kill_grace: float, checkpoint_on_evict: Optional[float]) -> int:
    return math.ceil(kill_grace + (checkpoint_on_evict or 0.0) + VACATE_MARGIN)


def snippet_lines(
    args: argparse.Namespace, program: list[str], *, cwd: Optional[str] = None
) -> list[str]:
    """The submit-file lines for ``args`` (a Namespace from this command's parser)."""
    cfg = _validated(args, program)
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
    inputs += _local_files(program, cwd)
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
    lines += [
        f"transfer_checkpoint_files = {cfg.store}",
        "when_to_transfer_output = ON_EXIT_OR_EVICT",
    ]
    if cfg.trigger_signal:
        lines += [
            "+WantCheckpointSignal = true",
            f'+CheckpointSig = "{signal_name(cfg.trigger_signal[0])}"',
        ]
    lines.append(f"kill_sig = {signal_name(cfg.kill_signal)}")
    lines.append(f"job_max_vacate_time = {vacate_time(cfg.kill_grace, cfg.checkpoint_on_evict)}")
    if cfg.dmtcp:  # an image resumes only on the CPU family it was made on
        from ..dmtcp import microarch

        lines.append(f'requirements = (Microarch == "{microarch()}")')
    if cfg.checkpoint_on_evict:
        lines += [
            "# --checkpoint-on-evict: HTCondor uploads transfer_output_files at eviction; to keep",
            "# the commit made then, list the store there too (it must exist when the job ends):",
            f"# transfer_output_files = {cfg.store}, <your result files>",
        ]
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
    config.add_run_options(p)
    g = p.add_argument_group("snippet options")
    g.add_argument(
        "--legacy",
        action="store_true",
        help="write +SuccessCheckpointExitCode/+WantFTOnCheckpoint (HTCondor 8.8) instead of "
        "checkpoint_exit_code",
    )
    g.add_argument(
        "--pyz",
        metavar="FILE",
        default=None,
        help=f"the single-file supervisor to ship (default {PYZ_NAME})",
    )
    launch = g.add_mutually_exclusive_group()
    launch.add_argument(
        "--python",
        metavar="PY",
        default=None,
        help="start the .pyz with this interpreter: executable = /usr/bin/env, "
        'arguments = "PY ckpt-supervisor.pyz run ..."',
    )
    launch.add_argument(
        "--installed",
        action="store_true",
        help="use the ckpt-supervisor installed on the execute nodes; ship no .pyz",
    )
    g.add_argument(
        "--input",
        action="append",
        metavar="FILE",
        help="another file for transfer_input_files; repeatable",
    )
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
    lines = snippet_lines(args, program)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0

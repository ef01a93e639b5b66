"""Read an HTCondor submit file, the way ``condor_submit`` does, for the dry run.

Only what the dry run needs is understood; every other command is kept (so the job ad can carry
it) and reported once as ignored, never fatal. A file that ``condor_submit`` itself would refuse
(a line that is neither a comment, ``name = value`` nor ``queue``; unbalanced quotes in
``arguments`` or ``environment``; a bad number or signal) raises ``SubmitFileError`` naming the
file and line.

Syntax followed (checked against ``htcondor2.Submit`` in ``tests/unit/test_condor_submit.py``):

- ``#`` starts a comment only at the beginning of a line (after blanks); ``foo = a # b`` has the
  value ``a # b``.
- A line ending in ``\\`` continues on the next line, whose leading blanks are dropped.
- ``name = value``: names are case-insensitive, values are stripped. ``+Attr = expr`` and
  ``MY.Attr = expr`` put ``Attr`` into the job ad as a raw ClassAd expression.
- ``queue [N] [...]``: the first ``queue`` statement ends the description; the dry run emulates
  job ``1.0`` (cluster 1, process 0) of it, as ``htcondor2.Submit`` does for ``$(Cluster)``.
- ``$(name)`` expands another command (or ``Cluster``/``ClusterId``/``Process``/``ProcId``/
  ``Step``/``Node``); an undefined macro expands to nothing; ``$$(name)`` is left alone.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..errors import ConfigError, SubmitFileError
from ..signals import parse_signal
from . import attributes, classad

# Commands the dry run acts on (lower case). Everything else is reported once as ignored.
UNDERSTOOD = frozenset(
    {
        "executable",
        "arguments",
        "args",
        "environment",
        "env",
        "getenv",
        "transfer_input_files",
        "transfer_output_files",
        "transfer_checkpoint_files",
        "should_transfer_files",
        "when_to_transfer_output",
        "checkpoint_exit_code",
        "kill_sig",
        "remove_kill_sig",
        "job_max_vacate_time",
        "output",
        "error",
        "log",
        "universe",
        "transfer_executable",
        "initialdir",
        "iwd",
        "stream_output",
        "stream_error",
        "on_exit_hold",
        "on_exit_hold_reason",
        "on_exit_hold_subcode",
        "on_exit_remove",
        "max_retries",
        "success_exit_code",
        "retry_until",
    }
)
# condor_submit's JobMaxRetries when success_exit_code or retry_until comes without max_retries
# (seen on HTCondor 25.0.13 with condor_submit -dump).
DEFAULT_MAX_RETRIES = 2
# Job-ad attributes (given as +Attr or MY.Attr) that the emulated execute point honours.
UNDERSTOOD_ATTRS = frozenset(
    {
        "wantftoncheckpoint",
        "successcheckpointexitcode",
        "successcheckpointexitbysignal",
        "successcheckpointexitsignal",
        "wantcheckpointsignal",
        "checkpointsig",
        "removekillsig",
        "wantioproxy",
    }
)

_MACRO = re.compile(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_.]*)\)")
_BUILTIN_MACROS = {
    "cluster": "1",
    "clusterid": "1",
    "process": "0",
    "procid": "0",
    "step": "0",
    "node": "0",
    "row": "0",
    "item": "",
}


@dataclass
class SubmitFile:
    """The commands of a submit file up to its first ``queue`` statement, as written."""

    path: Path
    commands: dict[str, str] = field(default_factory=dict)  # name as written -> raw value
    lines: dict[str, int] = field(default_factory=dict)  # lower-case name -> line number
    queue_args: Optional[str] = None  # text after ``queue``; None when there is no queue
    queue_line: int = 0
    after_queue: list[int] = field(default_factory=list)  # lines of commands after the queue

    def _key(self, name: str) -> Optional[str]:
        low = name.lower()
        for key in self.commands:
            if key.lower() == low:
                return key
        return None

    def raw(self, name: str) -> Optional[str]:
        key = self._key(name)
        return None if key is None else self.commands[key]

    def line_of(self, name: str) -> int:
        return self.lines.get(name.lower(), 0)

    def expand(self, value: str, _depth: int = 0) -> str:
        """Expand ``$(name)`` macros the way condor_submit does for job 1.0."""
        if _depth > 20:
            raise SubmitFileError(f"{self.path}: macro expansion of {value!r} does not terminate")

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            own = self.raw(name)
            if own is not None:
                return self.expand(own, _depth + 1)
            return _BUILTIN_MACROS.get(name.lower(), "")

        return _MACRO.sub(sub, value)

    def get(self, name: str) -> Optional[str]:
        """The macro-expanded value of a command, or None when it is absent."""
        raw = self.raw(name)
        return None if raw is None else self.expand(raw)

    def attrs(self) -> dict[str, str]:
        """``+Attr``/``MY.Attr`` settings: attribute name -> raw ClassAd expression (expanded)."""
        return {
            k[3:]: self.expand(v) for k, v in self.commands.items() if k.upper().startswith("MY.")
        }

    def queue_count(self) -> int:
        if not self.queue_args:
            return 1
        first = self.queue_args.split()[0]
        return int(first) if first.isdigit() else 1

    def ignored(self) -> list[str]:
        """Commands present that the dry run does not act on, in file order."""
        out = []
        for key in self.commands:
            low = key.lower()
            if low.startswith("my."):
                if low[3:] not in UNDERSTOOD_ATTRS:
                    # Custom attributes still go into the job ad; they are only not acted on.
                    continue
            elif low not in UNDERSTOOD:
                out.append(key)
        return out


def parse_submit_text(text: str, path: Path) -> SubmitFile:
    """Parse submit-file text; raise SubmitFileError with a line number for malformed lines."""
    sub = SubmitFile(path=path)
    logical: list[tuple[int, str]] = []
    pending: Optional[tuple[int, str]] = None
    for physical, text_line in enumerate(text.splitlines(), start=1):
        number, line = physical, text_line
        if pending is not None:
            number, head = pending
            line = head + text_line.lstrip()
            pending = None
        if line.rstrip().endswith("\\") and not line.lstrip().startswith("#"):
            pending = (number, line.rstrip()[:-1])
            continue
        logical.append((number, line))
    if pending is not None:
        logical.append(pending)

    for number, line in logical:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if sub.queue_args is not None:
            sub.after_queue.append(number)
            continue
        word = stripped.split(None, 1)[0].lower()
        if word == "queue" and "=" not in stripped.split(None, 1)[-1][:1]:
            sub.queue_args = stripped[5:].strip()
            sub.queue_line = number
            continue
        if "=" not in stripped:
            raise SubmitFileError(
                f"{path}:{number}: expected 'name = value' or 'queue', found {stripped!r}"
            )
        name, value = stripped.split("=", 1)
        name = name.strip()
        value = value.strip()
        if name.startswith("+"):
            name = "MY." + name[1:].strip()
        bare = name[3:] if name.upper().startswith("MY.") else name
        if not bare or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", bare):
            raise SubmitFileError(
                f"{path}:{number}: {name!r} is not a valid command or attribute name"
            )
        # The last setting wins, under the spelling first used, as in condor_submit.
        sub.commands[sub._key(name) or name] = value
        sub.lines[name.lower()] = number
    return sub


def parse_submit_file(path: str | os.PathLike[str]) -> SubmitFile:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SubmitFileError(
            f"{p}: cannot read the submit file: {exc.strerror}", cause=exc
        ) from exc
    return parse_submit_text(text, p)


# --- value syntaxes -------------------------------------------------------------------------


def split_new_syntax(value: str, *, where: str) -> list[str]:
    """Split the inside of a new-syntax ``"..."`` value: blanks separate words, ``'...'`` groups,
    ``''`` inside single quotes is a literal ``'``, ``""`` anywhere is a literal ``"``."""
    words: list[str] = []
    cur: list[str] = []
    have = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == '"':
            if i + 1 < n and value[i + 1] == '"':
                cur.append('"')
                have = True
                i += 2
                continue
            raise SubmitFileError(
                f'{where}: a double quote inside a quoted value must be doubled ("")'
            )
        if ch == "'":
            have = True
            i += 1
            while True:
                if i >= n:
                    raise SubmitFileError(f"{where}: unterminated single quote")
                if value[i] == "'":
                    if i + 1 < n and value[i + 1] == "'":
                        cur.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                if value[i] == '"' and i + 1 < n and value[i + 1] == '"':
                    cur.append('"')
                    i += 2
                    continue
                cur.append(value[i])
                i += 1
            continue
        if ch in " \t":
            if have:
                words.append("".join(cur))
                cur, have = [], False
            i += 1
            continue
        cur.append(ch)
        have = True
        i += 1
    if have:
        words.append("".join(cur))
    return words


def _is_new_syntax(value: str) -> bool:
    return len(value) >= 2 and value.startswith('"') and value.endswith('"')


def parse_arguments(value: str, *, where: str) -> list[str]:
    """``arguments``: new syntax when the value is enclosed in double quotes, else old syntax
    (blank-separated words; ``\\"`` is a literal double quote; no other quoting)."""
    if _is_new_syntax(value):
        return split_new_syntax(value[1:-1], where=where)
    if value.startswith('"'):
        raise SubmitFileError(
            f"{where}: arguments start with a double quote but do not end with one"
        )
    words = value.split()
    out = []
    for w in words:
        if '"' in w.replace('\\"', ""):
            raise SubmitFileError(
                f'{where}: old-syntax arguments need \\" for a double quote; '
                "or enclose the whole value in double quotes (new syntax)"
            )
        out.append(w.replace('\\"', '"'))
    return out


def parse_environment(value: str, *, where: str) -> dict[str, str]:
    """``environment``: new syntax (``"A=1 B='x y'"``) or old syntax (``A=1;B=2``)."""
    env: dict[str, str] = {}
    if _is_new_syntax(value):
        items = split_new_syntax(value[1:-1], where=where)
    else:
        items = [x for x in value.split(";") if x.strip()]
    for item in items:
        if "=" not in item:
            raise SubmitFileError(f"{where}: environment entry {item!r} is not NAME=value")
        k, v = item.split("=", 1)
        k = k.strip() if not _is_new_syntax(value) else k
        if not k:
            raise SubmitFileError(f"{where}: environment entry {item!r} has no name")
        env[k] = v
    return env


def parse_file_list(value: str) -> list[str]:
    return [x for x in re.split(r"[,\s]+", value.strip()) if x]


def parse_bool(value: str, *, where: str) -> bool:
    low = value.strip().strip('"').lower()
    if low in ("true", "t", "yes", "y", "1"):
        return True
    if low in ("false", "f", "no", "n", "0"):
        return False
    raise SubmitFileError(f"{where}: {value!r} is not a boolean (true or false)")


def classad_bool(value: str) -> bool:
    """A job-ad attribute read the way HTCondor's ``LookupBool`` reads it (``attributes``):
    ``true``/``false`` (any case) and numbers (non-zero is true); anything else (``"yes"``, a
    bare ``yes``, an expression) stays false."""
    return bool(attributes.lookup_bool(attributes.submit_value(value)))


def classad_int(value: str) -> Optional[int]:
    """A job-ad attribute read the way ``LookupInteger`` reads it (``attributes``): a number (a
    real is truncated), ``true``/``false`` as 1/0; None for anything else."""
    return attributes.lookup_int(attributes.submit_value(value))


def parse_int(value: str, *, where: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise SubmitFileError(f"{where}: {value!r} is not an integer") from None


# --- the job the dry run emulates -----------------------------------------------------------


@dataclass
class Job:
    """What the emulated execute point needs to know about job 1.0 of a submit file."""

    submit_dir: Path
    executable: str
    arguments: list[str]
    environment: dict[str, str]
    getenv: bool
    transfer_input_files: list[str]
    transfer_output_files: Optional[list[str]]
    transfer_checkpoint_files: Optional[list[str]]
    should_transfer_files: str
    when_to_transfer_output: str
    want_ft_on_checkpoint: bool
    checkpoint_exit_code: Optional[int]
    checkpoint_exit_by_signal: bool
    checkpoint_exit_signal: Optional[int]
    want_checkpoint_signal: bool
    checkpoint_sig: Optional[int]
    kill_sig: int
    job_max_vacate_time: Optional[int]
    output: Optional[str]
    error: Optional[str]
    log: Optional[str]
    queue_count: int
    ignored: list[str]
    attrs: dict[str, str]  # +Attr / MY.Attr raw expressions, for the job ad
    warnings: list[str]
    stream_output: bool = False
    stream_error: bool = False
    # The job policy the shadow evaluates when the job ends (ClassAd expressions, checked).
    on_exit_hold: Optional[str] = None
    on_exit_hold_reason: Optional[str] = None
    on_exit_hold_subcode: Optional[str] = None
    # OnExitRemove as condor_submit builds it from on_exit_remove, max_retries,
    # success_exit_code and retry_until (None: true, the job leaves the queue at its end), and
    # the attributes it refers to.
    on_exit_remove: Optional[str] = None
    job_max_retries: Optional[int] = None
    job_success_exit_code: Optional[int] = None
    # remove_kill_sig / RemoveKillSig: when set, the soft kill of every graceful shutdown
    # (condor_rm and eviction alike: os_proc.cpp:941); None: KillSig.
    remove_kill_sig: Optional[int] = None

    @property
    def soft_kill_sig(self) -> int:
        """The signal of a graceful shutdown: RemoveKillSig when set, else KillSig."""
        return self.remove_kill_sig if self.remove_kill_sig is not None else self.kill_sig

    @property
    def on_exit_or_evict(self) -> bool:
        return self.when_to_transfer_output.upper() == "ON_EXIT_OR_EVICT"

    def desired_checkpoint_status(self) -> int:
        """``computeDesiredExitStatus`` (``starter_util.cpp``): the raw wait status that means
        "checkpoint taken": the signal number by signal, else the code shifted left by 8. An
        absent or zero code (or signal) gives 0: a plain exit 0. Whether a match counts is the
        reaper's business (``WantFTOnCheckpoint``, or an outstanding checkpoint signal)."""
        if self.checkpoint_exit_by_signal:
            return self.checkpoint_exit_signal or 0
        return ((self.checkpoint_exit_code or 0) & 0xFF) << 8

    def describe_checkpoint_exit(self) -> str:
        if self.checkpoint_exit_by_signal:
            return f"on signal {self.checkpoint_exit_signal or 0}"
        return f"with exit code {self.checkpoint_exit_code or 0}"


def _attr_value(attrs: dict[str, str], name: str) -> Optional[str]:
    for k, v in attrs.items():
        if k.lower() == name.lower():
            return v
    return None


def _signal_value(text: str, *, where: str) -> int:
    try:
        return parse_signal(text.strip().strip('"'), what=where, catchable=False)
    except ConfigError as exc:
        raise SubmitFileError(str(exc), cause=exc) from exc


def load_job(path: str | os.PathLike[str]) -> Job:
    """Parse a submit file and interpret the commands the dry run understands."""
    sub = parse_submit_file(path)
    return job_from_submit(sub)


def job_from_submit(sub: SubmitFile) -> Job:
    p = sub.path

    def where(name: str) -> str:
        return f"{p}:{sub.line_of(name)}: {name}"

    def awhere(attr: str) -> str:
        return f"{p}:{sub.line_of('my.' + attr)}: +{attr}"

    if sub.queue_args is None:
        raise SubmitFileError(f"{p}: no 'queue' statement; condor_submit would submit nothing")
    warnings: list[str] = []
    try:
        count = sub.queue_count()
    except ValueError:
        count = 1
    if sub.queue_args and not sub.queue_args.split()[0].isdigit():
        warnings.append(
            f"{p}:{sub.queue_line}: 'queue {sub.queue_args}': only the first job (1.0) is emulated "
            "and its item variables are empty"
        )
    elif count > 1:
        warnings.append(
            f"{p}:{sub.queue_line}: queue {count}: only the first job (1.0) is emulated"
        )
    if sub.after_queue:
        warnings.append(
            f"{p}:{sub.after_queue[0]}: commands after the first queue statement are ignored"
        )

    universe = (sub.get("universe") or "vanilla").lower()
    if universe not in ("vanilla", "5"):
        raise SubmitFileError(
            f"{where('universe')}: the dry run emulates the vanilla universe only, not {universe!r}"
        )
    initialdir = sub.get("initialdir") or sub.get("iwd")
    submit_dir = p.resolve().parent
    if initialdir:
        submit_dir = (submit_dir / initialdir).resolve()

    executable = sub.get("executable")
    if not executable:
        raise SubmitFileError(f"{p}: no 'executable' command")

    arguments: list[str] = []
    for name in ("arguments", "args"):
        val = sub.get(name)
        if val is not None:
            arguments = parse_arguments(val, where=where(name))
    environment: dict[str, str] = {}
    for name in ("environment", "env"):
        val = sub.get(name)
        if val is not None:
            environment = parse_environment(val, where=where(name))
    getenv_raw = sub.get("getenv")
    getenv = False
    if getenv_raw:
        low = getenv_raw.strip().lower()
        getenv = low not in ("false", "f", "no", "n", "0")

    def opt_list(name: str) -> Optional[list[str]]:
        val = sub.get(name)
        return None if val is None else parse_file_list(val)

    attrs = sub.attrs()
    want_ft = False
    ckpt_code: Optional[int] = None
    raw = sub.get("checkpoint_exit_code")
    if raw is not None:
        ckpt_code = parse_int(raw, where=where("checkpoint_exit_code"))
        want_ft = True
    # +Attr values are read the way the starter reads the job ad (LookupBool, LookupInteger):
    # a value of the wrong type is not an error there, it reads as false or 0.
    a = _attr_value(attrs, "WantFTOnCheckpoint")
    if a is not None:
        want_ft = classad_bool(a)
    a = _attr_value(attrs, "SuccessCheckpointExitCode")
    if a is not None:
        ckpt_code = classad_int(a)
        if ckpt_code is None:
            ckpt_code = 0
            warnings.append(
                f"{awhere('SuccessCheckpointExitCode')} = {a}: not a number; HTCondor reads it "
                "as 0, so a plain exit 0 is the checkpoint status (and the supervisor refuses "
                "to start: exit 64)"
            )
        else:
            note = attributes.int_note("+SuccessCheckpointExitCode", attributes.submit_value(a), a.strip())
            if note is not None:
                warnings.append(f"{p}:{sub.line_of('my.SuccessCheckpointExitCode')}: {note}")
    by_signal = False
    a = _attr_value(attrs, "SuccessCheckpointExitBySignal")
    if a is not None:
        by_signal = classad_bool(a)
    exit_signal: Optional[int] = None
    a = _attr_value(attrs, "SuccessCheckpointExitSignal")
    if a is not None:
        exit_signal = classad_int(a)
        if exit_signal is None:
            exit_signal = 0
            warnings.append(
                f"{awhere('SuccessCheckpointExitSignal')} = {a}: HTCondor reads this attribute "
                "as a number only (LookupInteger), so it is 0 here; write the signal number, "
                f"e.g. {int(signal.SIGUSR1)} for SIGUSR1"
            )
    if by_signal and not exit_signal:
        warnings.append(
            f"{awhere('SuccessCheckpointExitBySignal')}: true but +SuccessCheckpointExitSignal "
            "is not a signal number: the checkpoint status is 0, so a plain exit 0 counts as "
            "a checkpoint"
        )
    want_sig = False
    a = _attr_value(attrs, "WantCheckpointSignal")
    if a is not None:
        want_sig = classad_bool(a)
        note = attributes.bool_note("+WantCheckpointSignal", attributes.submit_value(a), a.strip())
        if note is not None:
            warnings.append(f"{awhere('WantCheckpointSignal')}: {note}")
        elif attributes.lookup_bool(attributes.submit_value(a)) is None:
            warnings.append(
                f"{awhere('WantCheckpointSignal')} = {a}: an expression the dry run does not "
                "evaluate (HTCondor's LookupBool would); it reads as false here, so no "
                "checkpoint signal is sent (write true or false)"
            )
    ckpt_sig: Optional[int] = None
    a = _attr_value(attrs, "CheckpointSig")
    if a is not None:
        ckpt_sig = _signal_value(a, where=f"{p}:{sub.line_of('my.checkpointsig')}: +CheckpointSig")
    kill_sig = int(signal.SIGTERM)
    raw = sub.get("kill_sig")
    if raw is not None:
        kill_sig = _signal_value(raw, where=where("kill_sig"))
    remove_kill_sig: Optional[int] = None
    raw = sub.get("remove_kill_sig")
    if raw is not None:
        remove_kill_sig = _signal_value(raw, where=where("remove_kill_sig"))
    a = _attr_value(attrs, "RemoveKillSig")
    if a is not None:  # the attribute comes after the command, as in condor_submit
        remove_kill_sig = _signal_value(a, where=f"{p}:{sub.line_of('my.removekillsig')}: +RemoveKillSig")
    vacate: Optional[int] = None
    raw = sub.get("job_max_vacate_time")
    if raw is not None:
        vacate = parse_int(raw, where=where("job_max_vacate_time"))
        if vacate < 0:
            raise SubmitFileError(f"{where('job_max_vacate_time')}: must not be negative")
    when = (sub.get("when_to_transfer_output") or "ON_EXIT").strip().upper()
    if when not in ("ON_EXIT", "ON_EXIT_OR_EVICT", "ON_SUCCESS"):
        raise SubmitFileError(
            f"{where('when_to_transfer_output')}: {when!r} is not "
            "ON_EXIT, ON_EXIT_OR_EVICT or ON_SUCCESS"
        )
    should = (sub.get("should_transfer_files") or "YES").strip().upper()
    if should not in ("YES", "NO", "IF_NEEDED"):
        raise SubmitFileError(
            f"{where('should_transfer_files')}: {should!r} is not YES, NO or IF_NEEDED"
        )
    if should == "NO":
        warnings.append(
            f"{p}:{sub.line_of('should_transfer_files')}: should_transfer_files = NO "
            "(shared file system): the dry run still uses a sandbox and file transfer"
        )
    if want_ft and not by_signal and not ckpt_code:
        warnings.append(
            f"{p}: +WantFTOnCheckpoint without a checkpoint exit code (or with code 0): "
            "HTCondor's checkpoint status is then 0, so a plain exit 0 counts as a checkpoint "
            "and the job restarts instead of finishing"
        )
    stream_out = sub.get("stream_output")
    stream_err = sub.get("stream_error")
    policy = {name: _expression(sub, where, name)
              for name in ("on_exit_hold", "on_exit_hold_reason", "on_exit_hold_subcode")}
    on_exit_remove, max_retries, success_code = _on_exit_remove(sub, where)

    return Job(
        submit_dir=submit_dir,
        executable=executable,
        arguments=arguments,
        environment=environment,
        getenv=getenv,
        transfer_input_files=opt_list("transfer_input_files") or [],
        transfer_output_files=opt_list("transfer_output_files"),
        transfer_checkpoint_files=opt_list("transfer_checkpoint_files"),
        should_transfer_files=should,
        when_to_transfer_output=when,
        want_ft_on_checkpoint=want_ft,
        checkpoint_exit_code=ckpt_code,
        checkpoint_exit_by_signal=by_signal,
        checkpoint_exit_signal=exit_signal,
        want_checkpoint_signal=want_sig,
        checkpoint_sig=ckpt_sig,
        kill_sig=kill_sig,
        job_max_vacate_time=vacate,
        output=sub.get("output"),
        error=sub.get("error"),
        log=sub.get("log"),
        queue_count=count,
        ignored=sub.ignored(),
        attrs=attrs,
        warnings=warnings,
        stream_output=stream_out is not None
        and parse_bool(stream_out, where=where("stream_output")),
        stream_error=stream_err is not None
        and parse_bool(stream_err, where=where("stream_error")),
        on_exit_hold=policy["on_exit_hold"],
        on_exit_hold_reason=policy["on_exit_hold_reason"],
        on_exit_hold_subcode=policy["on_exit_hold_subcode"],
        on_exit_remove=on_exit_remove,
        job_max_retries=max_retries,
        job_success_exit_code=success_code,
        remove_kill_sig=remove_kill_sig,
    )


def _expression(sub: SubmitFile, where: Callable[[str], str], name: str) -> Optional[str]:
    """The ClassAd expression of command ``name``, if given; one condor_submit would refuse is
    a SubmitFileError naming its line."""
    text = sub.get(name)
    if text is not None:
        try:
            classad.parse(text)
        except SubmitFileError as exc:
            raise SubmitFileError(f"{where(name)}: {exc}; condor_submit refuses it too: "
                                  "fix the expression") from None
    return text


def _on_exit_remove(
    sub: SubmitFile, where: Callable[[str], str]
) -> tuple[Optional[str], Optional[int], Optional[int]]:
    """(OnExitRemove, JobMaxRetries, JobSuccessExitCode) as condor_submit 25.0.13 writes them
    (``condor_submit -dump``): with max_retries, success_exit_code or retry_until,
    ``NumJobCompletions > JobMaxRetries || ExitCode =?= <JobSuccessExitCode or 0>``, then
    `` || `` retry_until (an integer N: ``ExitCode =?= N``), then `` || `` on_exit_remove;
    JobMaxRetries 2 when max_retries is not given. Otherwise on_exit_remove as written."""

    def integer(name: str) -> Optional[int]:
        text = sub.get(name)
        if text is None:
            return None
        try:
            return int(text.strip())
        except ValueError:
            raise SubmitFileError(f"{where(name)}: {text!r} is not an integer; condor_submit "
                                  "refuses it too") from None

    remove = _expression(sub, where, "on_exit_remove")
    max_retries = integer("max_retries")
    success_code = integer("success_exit_code")
    retry_until = sub.get("retry_until")
    if retry_until is not None:
        try:
            retry_until = f"ExitCode =?= {int(retry_until.strip())}"
        except ValueError:
            retry_until = _expression(sub, where, "retry_until")
    if max_retries is None and success_code is None and retry_until is None:
        return remove, None, None
    parts = ["NumJobCompletions > JobMaxRetries",
             f"ExitCode =?= {'JobSuccessExitCode' if success_code is not None else 0}"]
    parts += [x for x in (retry_until, remove) if x is not None]
    return (" || ".join(parts), DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
            success_code)

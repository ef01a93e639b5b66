"""One reading of HTCondor's checkpoint attributes, from a job ad or a submit description.

The supervisor (``jobad.checkpoint_defaults``, from ``$_CONDOR_JOB_AD``), the dry run
(``submit.job_from_submit``) and ``check`` all read the attributes through this module, so that
they agree with each other and with the condor_starter:

- ``WantCheckpointSignal``, ``WantFTOnCheckpoint`` and ``SuccessCheckpointExitBySignal`` are read
  with ``LookupBool`` (:func:`lookup_bool`): ``true``/``false`` in any case, or a number (non-zero
  is true). Anything else (a string such as ``"yes"``, a bare word such as ``yes``, which is a
  reference to an attribute that does not exist) makes the lookup fail, and the setting stays
  false. Seen on HTCondor 25.0.13: ``+WantCheckpointSignal = yes`` and ``= "yes"`` sent no
  checkpoint signal, ``= 1`` and ``= true`` did. :func:`bool_note` words the warning for a value
  that is present but reads as false.
- ``SuccessCheckpointExitCode`` and ``SuccessCheckpointExitSignal`` are read with
  ``LookupInteger`` (:func:`lookup_int`), which is classad's ``EvaluateAttrNumber``: a number (a
  real is truncated: ``85.0`` and ``85.9`` read as 85), ``true``/``false`` as 1/0. A string
  (``"85"``, a signal *name*) or an undefined reference fails the lookup, and the starter keeps
  its initial 0 (``starter_util.cpp:12-22``): :func:`starter_int` gives that reading and
  :func:`int_note` the warning for a value that reads as something the user likely did not mean.
  A checkpoint code that reads as 0 makes the checkpoint status a plain exit 0.
- ``CheckpointSig``, ``KillSig`` and ``RemoveKillSig`` take a signal name or number
  (``classad_helpers.cpp:101-104``): :func:`signal_text` strips the quotes of a string.

Values come as the job-ad reader gives them (a Python literal, or ``jobad.Expression`` for
anything else) or as the expression text of a submit file's ``+Attr`` line, which
:func:`submit_value` turns into the same. This module imports nothing beyond the package's job-ad
reader.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Optional

from ..errors import JobAdError
from ..jobad import ERROR, Expression, Value, parse_literal

BOOL_ATTRIBUTES = ("WantCheckpointSignal", "WantFTOnCheckpoint", "SuccessCheckpointExitBySignal")
INT_ATTRIBUTES = ("SuccessCheckpointExitCode", "SuccessCheckpointExitSignal")
SIGNAL_ATTRIBUTES = ("CheckpointSig", "KillSig", "RemoveKillSig")
# The submit commands that condor_submit turns into checkpoint attributes of the job ad
# (checkpoint_exit_code also sets WantFTOnCheckpoint = true).
SUBMIT_COMMANDS = {
    "checkpoint_exit_code": "SuccessCheckpointExitCode",
    "kill_sig": "KillSig",
    "remove_kill_sig": "RemoveKillSig",
    "job_max_vacate_time": "JobMaxVacateTime",
    "transfer_checkpoint_files": "TransferCheckpoint",
    "when_to_transfer_output": "WhenToTransferOutput",
}


def submit_value(text: str) -> Value:
    """A submit file's ``+Attr = text`` as the job ad will hold it: a literal, else an Expression."""
    text = text.strip()
    try:
        return parse_literal(text)
    except JobAdError:
        return Expression(text)


def with_attrs(ad: Mapping[str, object], attrs: Mapping[str, str], *, skip: Iterable[str] = ()) -> dict[str, object]:
    """``ad`` with a submit file's ``+Attr``/``MY.Attr`` lines applied (as Expressions): they come
    after the commands, so an attribute wins over what a command set under the same name (names
    ignore case). ``skip``: attribute names (lower case) left out."""
    skipped = set(skip)
    out = dict(ad)
    for name, expr in attrs.items():
        out = {k: v for k, v in out.items() if k.lower() != name.lower()}
        if name.lower() not in skipped:
            out[name] = Expression(expr)
    return out


def _is_reference(value: Value) -> bool:
    """A bare attribute name (``yes``): undefined unless the ad defines it."""
    return isinstance(value, Expression) and value.text.replace("_", "a").isalnum() and not value.text[0].isdigit()


def lookup_bool(value: Value) -> Optional[bool]:
    """``LookupBool``: a boolean, or a number (non-zero is true); None when the lookup fails
    (a string, undefined, error, a reference to an attribute the ad lacks). An expression it
    cannot evaluate also gives None: :func:`evaluable` tells the two apart."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return not (value == 0 or (isinstance(value, float) and math.isnan(value)))
    return None


def lookup_int(value: Value) -> Optional[int]:
    """``LookupInteger``: an integer, a real truncated, a boolean as 1/0; None otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def starter_int(value: Value) -> Optional[int]:
    """What the starter holds after ``LookupInteger`` on a present attribute: the number, or 0
    when the lookup fails (a string, undefined, error, a reference to an undefined attribute).
    None for an expression that cannot be told without evaluating it."""
    number = lookup_int(value)
    if number is None and evaluable(value):
        return 0
    return number


def int_note(name: str, value: Value, shown: str, *, hint: Optional[str] = None) -> Optional[str]:
    """The warning for an integer attribute that ``LookupInteger`` reads as something other than
    what is written (``shown``: the value as the user wrote it): a real that is not whole
    (truncated), a boolean (1 or 0), a string or a bare word (0). None for an integer, a whole
    real (``85.0`` reads as 85), or an expression that cannot be told without evaluating it.
    ``hint``: the number to suggest (default: the digits of a string such as ``"85"``)."""
    number = starter_int(value)
    if number is None or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    if isinstance(value, float):
        if value == number:
            return None
        what = f"a real, which LookupInteger truncates to {number}"
    elif isinstance(value, bool):
        what = f"a boolean, which LookupInteger reads as {number}"
    else:
        what = ("a string" if isinstance(value, str) else "error" if value is ERROR
                else "a reference to an undefined attribute")
        what += ", from which LookupInteger reads no number, so HTCondor holds 0"
    if hint is None:
        bare = value.strip() if isinstance(value, str) else ""
        hint = bare if bare.lstrip("-").isdigit() else str(number) if isinstance(value, float) else "N"
    return f"{name} = {shown} is {what}; write a bare integer: {name} = {hint}"


def evaluable(value: Value) -> bool:
    """Whether the lookup's result is known without evaluating an expression: every literal,
    and a bare word (a reference to an attribute that is not there: undefined)."""
    return not isinstance(value, Expression) or _is_reference(value)


def bool_note(name: str, value: Value, shown: str) -> Optional[str]:
    """The warning for a boolean attribute that is present but reads as false although it is
    not written as false or 0 (``shown``: the value as the user wrote it); None otherwise."""
    if lookup_bool(value) is not None or not evaluable(value) or value is None:
        return None
    what = ("a string" if isinstance(value, str)
            else "error" if value is ERROR else "a reference to an undefined attribute")
    return (f"{name} = {shown} is {what}: HTCondor reads it with LookupBool, which takes true, "
            "false or a number, so it reads as false; write true")


def signal_text(value: Value) -> Optional[str]:
    """A signal attribute's value as text for ``parse_signal`` (a name or a number); None when it
    is neither a string nor an integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, str)):
        return str(value).strip()
    if isinstance(value, Expression):  # a bare name such as SIGUSR2 written without quotes
        return value.text.strip().strip('"')
    return None

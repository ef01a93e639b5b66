"""The decision core's names as its in-memory tests use them, in one list.

``tests/unit/test_core.py`` and ``tests/unit/test_core_properties.py`` take them with
``from support.core_api import *``; a name a new test needs is added here once.
"""

from __future__ import annotations

from supervisor.core import (
    TABLE,
    TRANSITIONS,
    ChildExited,
    ChildGone,
    Commit,
    CommitFinished,
    Core,
    CoreSettings,
    Exit,
    KillTree,
    Observation,
    Observed,
    Phase,
    Record,
    Redeliver,
    RunValidator,
    SendSignal,
    SignalReceived,
    Started,
    StopSettling,
    Tick,
    TreeGone,
    ValidatorFinished,
    label,
    plan_start,
)
from supervisor.rules import Closed, Log, Marker, Quiet, Rule
from supervisor.rules import Command as CommandRule
from supervisor.rules import Exit as ExitRule

__all__ = [
    "TABLE",
    "TRANSITIONS",
    "ChildExited",
    "ChildGone",
    "Closed",
    "CommandRule",
    "Commit",
    "CommitFinished",
    "Core",
    "CoreSettings",
    "Exit",
    "ExitRule",
    "KillTree",
    "Log",
    "Marker",
    "Observation",
    "Observed",
    "Phase",
    "Quiet",
    "Record",
    "Redeliver",
    "Rule",
    "RunValidator",
    "SendSignal",
    "SignalReceived",
    "Started",
    "StopSettling",
    "Tick",
    "TreeGone",
    "ValidatorFinished",
    "label",
    "plan_start",
]

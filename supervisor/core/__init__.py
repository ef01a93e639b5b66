"""The decision core: the checkpoint lifecycle as a pure state machine.

Theory of operation
-------------------
The I/O loop (``supervisor.loop``) owns every process, file and signal. It turns what happens into
*events* (a signal arrived, the program exited, the checkpoint files look like this now, a commit
finished, the clock reached a deadline) and hands each to :meth:`Core.handle`, which returns
*commands* (send this signal, commit, kill the tree, exit with this status, record this event).
The core imports no ``os``, ``signal``, ``psutil`` or ``time``: it is tested in memory with a fake
clock, and the state diagram in the docs is drawn from its transition table (``supervisor/core/table.py``).

Rules it enforces (see ``docs/explanation/htcondor-semantics.md``):

* The checkpoint status (``exit_code`` or death by ``exit_signal``) is reported only after a
  commit succeeded *and* the whole process tree is gone.
* One checkpoint is in flight at a time; triggers that arrive meanwhile are coalesced.
* A checkpoint is complete only when the checkpoint paths changed since the request (in watch
  mode: since the last commit) and then every completion rule holds; a ``command`` rule runs last.
* After HTCondor's checkpoint signal (a trigger signal) the job owes HTCondor the checkpoint
  status (:class:`Promise`, semantics rule 8): *every* way out is then the checkpoint status, an
  eviction included. A program that just finished has its real status committed into the store
  (``final_status``) and reported at the next start (:func:`plan_start`); a program that ended
  without a new checkpoint (killed by the soft kill, the grace, or the job signal) leaves the
  committed store unchanged, and the checkpoint status makes HTCondor restart from it.
* The program's own exit with the reserved checkpoint code is a distinct failure, unless
  post-exit inspection (``inspect_on_exit``) turns it into a checkpoint.
* On a soft-kill signal (``KillSig`` or ``RemoveKillSig``): pass it on, wait ``kill_grace``,
  SIGKILL the tree (or first try a checkpoint within ``checkpoint_on_evict`` seconds; a checkpoint
  already in flight under a promise gets ``promise_budget`` seconds). Exit status then is the
  program's own, unless a promise is owed.
* The program's end is decided from facts that may take time (DMTCP's images, a done rule's
  command). The loop gathers them off its thread; meanwhile the core is SETTLING (``ChildGone``):
  it sends nothing to the reaped PID, holds the events that arrive and hands them back
  (``Redeliver``) after the ``ChildExited``, in the phase the program ended in, so they are
  handled as if they came just after it. A soft kill meanwhile bounds the wait by the kill grace.
* A program killed by the job signal we sent (a shell wrapper without ``exec``) has not finished:
  the checkpoint status is reported over the unchanged store, with a line saying how to fix it.

Layout
------
``events``  the events in and the commands out; ``state`` the phase, the frozen sub-states and
the settings; ``table`` the transition table, whose branches name a guard (``guards``) and an
action (``actions``); ``steps`` the steps the actions share; ``machine`` the :class:`Core` that
looks events up in the table.
"""

from __future__ import annotations

from .events import (
    ChildExited,
    ChildGone,
    Command_,
    Commit,
    CommitFinished,
    Event,
    Exit,
    KillTree,
    Observation,
    Observed,
    Record,
    Redeliver,
    RunValidator,
    SendSignal,
    SignalReceived,
    Started,
    StopSettling,
    Target,
    Tick,
    TreeGone,
    ValidatorFinished,
)
from .machine import TRANSITIONS, Core, Step
from .state import (
    Baseline,
    Child,
    CoreSettings,
    Eviction,
    Ledger,
    Phase,
    Plan,
    Promise,
    Reason,
    Request,
    Settling,
    Sight,
    StartPlan,
    Timers,
    plan_start,
    program_status,
)
from .table import TABLE, Branch, label

__all__ = [
    "TABLE", "TRANSITIONS", "Baseline", "Branch", "Child", "ChildExited", "ChildGone", "Command_", "Commit",
    "CommitFinished", "Core", "CoreSettings", "Event", "Eviction", "Exit", "KillTree", "Ledger", "Observation",
    "Observed", "Phase", "Plan", "Promise", "Reason", "Record", "Redeliver", "Request", "RunValidator",
    "SendSignal", "Settling", "Sight", "SignalReceived", "StartPlan", "Started", "Step", "StopSettling", "Target",
    "Tick", "Timers", "TreeGone", "ValidatorFinished", "label", "plan_start", "program_status",
]

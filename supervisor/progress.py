"""No-progress detection: executions that keep committing the checkpoint they restored.

A program that cannot resume from what it wrote (or completion rules that commit half of its
checkpoint, see docs/howto/non-atomic-checkpoints.md) restarts from the beginning at every
execution, writes the same first checkpoint again, and HTCondor restarts it again: forever, with
no progress. Each commit records in its state which committed content the execution had
restored (``resumed_from``, a :meth:`Store.content_id`) and how many executions before it did
the same (``stalls``). At the next start, a store whose content equals the ``resumed_from`` it
records is one more execution without progress; after ``--max-no-progress`` in a row the job
ends with status 76 (``EXIT_NO_PROGRESS``) instead of restarting, and the store is kept.
"""

from __future__ import annotations

from . import exitstatus

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Optional


def stalls(state: dict[str, Any], content_id: str) -> int:
    """Executions in a row, up to the one that made this store, that ended where they began."""
    if not state.get("resumed_from") or state.get("resumed_from") != content_id:
        return 0
    before = state.get("stalls", 0)
    return (before if isinstance(before, int) and not isinstance(before, bool) else 0) + 1


def check_at_start(sup: Any, state: dict[str, Any]) -> Optional[Any]:
    """Before restoring: note what is restored (for the next commits' state); an Outcome with
    status 76 when the limit is reached, else None. ``sup`` is the loop's Supervisor."""
    from .loop import Outcome

    content = sup.store.content_id()
    count = stalls(state, content)
    sup.progress = {"resumed_from": content, "stalls": count}
    limit = sup.cfg.max_no_progress
    if not count:
        return None
    if limit and count >= limit:
        reason = (f"no progress: the last {count} executions each committed, byte for byte, the "
                  f"checkpoint they had restored (--max-no-progress {limit}); ending the job with "
                  f"status {exitstatus.EXIT_NO_PROGRESS}; the committed store is kept")
        sup.log.emit("no_progress", {"stalls": count, "limit": limit}, level="error", message=reason)
        return Outcome(exitstatus.EXIT_NO_PROGRESS, reason=reason)
    sup.log.emit("no_progress", {"stalls": count, "limit": limit}, level="warning",
                 message=f"the last {count} execution(s) committed the checkpoint they had restored, "
                         f"byte for byte: no progress (the job ends after {limit})" if limit else
                         f"the last {count} execution(s) committed the checkpoint they had restored")
    return None

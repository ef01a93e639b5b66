"""Write a job event log in HTCondor's classic (non-XML, non-JSON) format.

Each event is a header line ``NNN (CCC.PPP.SSS) YYYY-MM-DD HH:MM:SS text``, indented body lines,
and a line holding ``...``. ``htcondor2.JobEventLog`` reads what this module writes (checked in
``tests/e2e/test_dryrun_vuc.py``). The layouts follow ``src/condor_utils/condor_event.cpp``:

===  ======================================  ===============================================
000  SubmitEvent                             ``Job submitted from host: <addr>``
001  ExecuteEvent                            ``Job executing on host: <addr>``
004  JobEvictedEvent                         ``Job was evicted. Code C Subcode S`` + usage, bytes
                                             and ``Reason:``
005  JobTerminatedEvent                      ``Job terminated.`` + return value or signal
007  ShadowExceptionEvent                    ``Shadow exception!`` + message (crash)
009  JobAbortedEvent                         ``Job was aborted.`` + reason
012  JobHeldEvent                            ``Job was held.`` + reason, code and subcode
021  RemoteErrorEvent                        ``Error from starter on SLOT:`` + message, code and
                                             subcode (before a hold the starter causes)
040  FileTransferEvent                       ``Started/Finished transferring input/output files``
===  ======================================  ===============================================
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Optional

USAGE_ZERO = "Usr 0 00:00:00, Sys 0 00:00:00"
HOST = "<127.0.0.1:0?alias=dry-run>"
VACATE_CODE = 1009  # what condor_vacate_job gave on HTCondor 25.0.13
VACATE_REASON = "Claim deactivated"



def _run_usage(sent_bytes: int) -> tuple[str, ...]:
    """A 004's lines on the run: usage (zero here) and bytes sent and received."""
    return (f"\t\t{USAGE_ZERO}  -  Run Remote Usage", f"\t\t{USAGE_ZERO}  -  Run Local Usage",
            f"\t{sent_bytes}  -  Run Bytes Sent By Job", "\t0  -  Run Bytes Received By Job")


def _how_it_ended(exit_code: Optional[int], signal: Optional[int], core: bool) -> tuple[str, ...]:
    """The lines of a 005 (and of a requeue's 004) that say how the job ended."""
    if signal is None:
        return (f"\t(1) Normal termination (return value {exit_code})",)
    return (f"\t(0) Abnormal termination (signal {signal})",
            "\t(1) Corefile in: core" if core else "\t(0) No core file")

class EventLog:
    """Append events for one job to a classic-format job event log (``log =`` in the submit file).

    ``wall`` returns seconds since the epoch (injectable for tests); timestamps are local time, as
    HTCondor writes them.
    """

    def __init__(
        self,
        path: Optional[os.PathLike[str] | str],
        *,
        cluster: int = 1,
        proc: int = 0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.cluster = cluster
        self.proc = proc
        self.wall = wall
        self.total_sent = 0

    def _write(self, code: int, headline: str, body: tuple[str, ...] = ()) -> None:
        if self.path is None:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.wall()))
        lines = [f"{code:03d} ({self.cluster:03d}.{self.proc:03d}.000) {stamp} {headline}"]
        lines.extend(body)
        lines.append("...")
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    def submit(self) -> None:
        self._write(0, f"Job submitted from host: {HOST}")

    def execute(self) -> None:
        self._write(1, f"Job executing on host: {HOST}")

    def transfer_input_started(self) -> None:
        """Before every execution, a missing input file included (HTCondor 25.0.13)."""
        self._write(40, "Started transferring input files", (f"\tTransferring to host: {HOST}",))

    def transfer_input_finished(self) -> None:
        self._write(40, "Finished transferring input files")

    def transfer_output_started(self) -> None:
        self._write(40, "Started transferring output files")

    def transfer_output_finished(self) -> None:
        self._write(40, "Finished transferring output files")

    def evicted(
        self,
        *,
        sent_bytes: int = 0,
        code: int = VACATE_CODE,
        subcode: int = 0,
        reason: str = VACATE_REASON,
    ) -> None:
        """Event 004 as HTCondor 25.0.13 writes it: the vacate reason's code and subcode in the
        headline, "(0) CPU times", the usage and byte counts, then ``Reason:``. A vacate is
        code 1009 "Claim deactivated"; a starter that ends in a hold (an upload failure) is
        logged as an eviction with the hold's code first, then 012."""
        self.total_sent += sent_bytes
        self._write(
            4,
            f"Job was evicted. Code {code} Subcode {subcode}",
            (
                "\t(0) CPU times",
                *_run_usage(sent_bytes),
                f"\tReason: {_one_line(reason)}",
            ),
        )

    def requeued(
        self,
        *,
        exit_code: Optional[int] = None,
        signal: Optional[int] = None,
        core: bool = False,
        sent_bytes: int = 0,
        expression: str = "",
    ) -> None:
        """Event 004 of a job that ended while its OnExitRemove was false, as HTCondor 25.0.13
        writes it: "(0) Job terminated and was requeued", the usage and byte counts, how it
        ended, and the expression that kept it in the queue."""
        self.total_sent += sent_bytes
        how = _how_it_ended(exit_code, signal, core)
        self._write(
            4,
            "Job was evicted.",
            (
                "\t(0) Job terminated and was requeued",
                *_run_usage(sent_bytes),
                *how,
                f"\tThe job attribute OnExitRemove expression '{_one_line(expression)}' evaluated "
                "to FALSE",
            ),
        )

    def terminated(
        self,
        *,
        exit_code: Optional[int] = None,
        signal: Optional[int] = None,
        core: bool = False,
        sent_bytes: int = 0,
    ) -> None:
        """Normal termination with ``exit_code``, or abnormal termination by ``signal``."""
        self.total_sent += sent_bytes
        how = _how_it_ended(exit_code, signal, core)
        self._write(
            5,
            "Job terminated.",
            (
                *how,
                f"\t\t{USAGE_ZERO}  -  Run Remote Usage",
                f"\t\t{USAGE_ZERO}  -  Run Local Usage",
                f"\t\t{USAGE_ZERO}  -  Total Remote Usage",
                f"\t\t{USAGE_ZERO}  -  Total Local Usage",
                f"\t{sent_bytes}  -  Run Bytes Sent By Job",
                "\t0  -  Run Bytes Received By Job",
                f"\t{self.total_sent}  -  Total Bytes Sent By Job",
                "\t0  -  Total Bytes Received By Job",
            ),
        )

    def shadow_exception(self, message: str, *, sent_bytes: int = 0) -> None:
        self.total_sent += sent_bytes
        self._write(
            7,
            "Shadow exception!",
            (
                f"\t{_one_line(message)}",
                f"\t{sent_bytes}  -  Run Bytes Sent By Job",
                "\t0  -  Run Bytes Received By Job",
            ),
        )

    def held(self, reason: str, *, code: int, subcode: int = 0) -> None:
        self._write(
            12, "Job was held.", (f"\t{_one_line(reason)}", f"\tCode {code} Subcode {subcode}")
        )

    def remote_error(self, message: str, *, slot: str, code: int, subcode: int) -> None:
        """Event 021 as HTCondor 25.0.13 writes it before the 004 and 012 of a hold the starter
        causes: "Error from starter on SLOT:", the starter's message, then its code and subcode
        (which may differ from the hold's: a missing output file is 13/2 here, 12/2 in the hold)."""
        self._write(
            21,
            f"Error from starter on {slot}:",
            (f"\t{_one_line(message)}", f"\tCode {code} Subcode {subcode}"),
        )

    def aborted(self, reason: str) -> None:
        self._write(9, "Job was aborted.", (f"\t{_one_line(reason)}",))


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()).strip() or "(no reason given)"

"""Publish checkpoint progress to the job ad through HTCondor chirp (optional, best effort).

After each committed checkpoint the run loop calls :func:`publish_commit`. When the job runs
under HTCondor with chirp available (``$_CONDOR_CHIRP_CONFIG`` names an existing file) and the
optional ``htcondor`` wheel is installed, it sets three attributes with
``HTChirp.set_job_attr_delayed``, which needs no ``+WantIOProxy`` because the names start with
``Chirp``:

=====================  ===========================================================
``ChirpCkptCount``     checkpoints committed by this execution of the supervisor
                       plus the sequence restored at its start (an integer)
``ChirpCkptLastTime``  epoch seconds of the last commit (an integer)
``ChirpCkptSeconds``   how long that commit took (a real)
``ChirpCkptBytes``     bytes in that commit (an integer; only when known)
=====================  ===========================================================

The values are advisory (HTCondor's own ``CheckpointNumber`` counts uploads, and HTCondor
25.0.13 left ``JobLastCheckpointTime`` undefined; these count commits). Nothing here may fail
the job: without the config file or the wheel it returns quietly; any error of chirp itself
is swallowed and only reported through the optional ``log`` callable. After the first
failure to connect, later calls in the same process are skipped (a missing chirp server
would otherwise cost a timeout per commit).
The network exchange happens on a daemon thread, so the run loop never waits for it; a call made
while the previous one is still running is dropped (the next commit publishes newer values).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Mapping
from typing import Any, Callable, Optional

CHIRP_CONFIG_ENV = "_CONDOR_CHIRP_CONFIG"
ATTR_COUNT = "ChirpCkptCount"
ATTR_LAST_TIME = "ChirpCkptLastTime"
ATTR_SECONDS = "ChirpCkptSeconds"
ATTR_BYTES = "ChirpCkptBytes"

TIMEOUT = 5.0  # seconds, per socket operation


class _State:
    disabled: Optional[str] = None  # why chirp is off for the rest of this process


_STATE = _State()
_busy = threading.Lock()


def _default_factory(config: str) -> Any:
    """An ``htcondor2.htchirp.HTChirp`` for the server named in ``config`` (lazy import).

    The file holds ``host port cookie``; reading it here (not in HTChirp) keeps chirp from
    printing to the job's stdout when the file is malformed.
    """
    with open(config, encoding="utf-8") as f:
        host, port, cookie = f.read().split()[:3]
    os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # never look for a pool configuration
    from htcondor2.htchirp import HTChirp  # lazily: the wheel is optional

    return HTChirp(host=host, port=int(port), cookie=cookie, timeout=TIMEOUT)


def publish_commit(
    count: int,
    committed_at: float,
    seconds: float,
    nbytes: Optional[int] = None,
    *,
    environ: Optional[Mapping[str, str]] = None,
    factory: Optional[Callable[[str], Any]] = None,
    log: Optional[Callable[[str], None]] = None,
    wait: bool = False,
) -> bool:
    """Publish one committed checkpoint in the background; never raises.

    ``count`` is the number of the commit (1 for the first), ``committed_at`` its wall-clock
    time (epoch seconds), ``seconds`` its duration, ``nbytes`` its size when known.

    Returns True when a publication was started (with ``wait=True``: when it succeeded), False
    when chirp is unavailable or disabled, or a previous publication is still running.
    ``environ``, ``factory`` (config path -> HTChirp-like object, used as a context manager)
    and ``log`` (one line of text per problem) are for tests and the run loop.
    """
    try:
        env = os.environ if environ is None else environ
        config = env.get(CHIRP_CONFIG_ENV)
        if not config or not os.path.isfile(config) or _STATE.disabled is not None:
            return False
        values = _values(count, committed_at, seconds, nbytes)
        if not _busy.acquire(blocking=False):
            return False
        if wait:
            return _send(config, values, factory or _default_factory, log)
        args = (config, values, factory or _default_factory, log)
        thread = threading.Thread(target=_send, args=args, name="chirp", daemon=True)
        thread.start()
        return True
    except Exception:  # a chirp failure must never fail the job
        return False


def _send(
    config: str,
    values: list[tuple[str, str]],
    factory: Callable[[str], Any],
    log: Optional[Callable[[str], None]],
) -> bool:
    """Runs with ``_busy`` held; releases it. Disables chirp for good after any failure."""
    try:
        try:
            client = factory(config)
        except ImportError:
            _STATE.disabled = "the htcondor wheel is not installed"
            return False
        with client as chirp:
            for name, value in values:
                chirp.set_job_attr_delayed(name, value)
        return True
    except Exception as exc:  # a chirp failure must never fail the job
        _STATE.disabled = f"chirp failed: {exc!r}"
        if log is not None:
            with contextlib.suppress(Exception):
                log(f"chirp: could not publish checkpoint attributes ({exc!r}); not trying again")
        return False
    finally:
        _busy.release()


def _values(
    count: int, committed_at: float, seconds: float, nbytes: Optional[int]
) -> list[tuple[str, str]]:
    """ClassAd literals of the attributes (``set_job_attr_delayed`` takes expressions)."""
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    out = [
        (ATTR_COUNT, str(int(count))),
        (ATTR_LAST_TIME, str(int(committed_at))),
        (ATTR_SECONDS, repr(round(float(seconds), 3))),
    ]
    if nbytes is not None:
        out.append((ATTR_BYTES, str(int(nbytes))))
    return out


def reset() -> None:
    """Forget an earlier failure (tests; a new job in the same process)."""
    _STATE.disabled = None

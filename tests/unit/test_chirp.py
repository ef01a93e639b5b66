"""Chirp publishing of checkpoint progress (supervisor.chirp), with a fake HTChirp."""

from __future__ import annotations

import builtins
import socket
import threading
from typing import ClassVar

import pytest
from support.helpers import sleep_until

from supervisor import chirp


class FakeChirp:
    """Records set_job_attr_delayed calls; can fail on connect or on a call."""

    instances: ClassVar[list[FakeChirp]] = []

    def __init__(self, config: str, *, fail: str = "", gate: threading.Event | None = None) -> None:
        self.config = config
        self.fail = fail
        self.gate = gate
        self.attrs: dict[str, str] = {}
        self.closed = False
        if fail == "connect":
            raise ConnectionRefusedError("no chirp server")
        FakeChirp.instances.append(self)

    def __enter__(self) -> FakeChirp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def set_job_attr_delayed(self, name: str, value: str) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail == "call":
            raise OSError("connection reset")
        self.attrs[name] = value


@pytest.fixture(autouse=True)
def _fresh():
    chirp.reset()
    FakeChirp.instances = []
    yield
    sleep_until(lambda: not chirp._busy.locked(), timeout=5)
    chirp.reset()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / ".chirp.config"
    path.write_text("127.0.0.1 9618 cookie\n")
    return {"_CONDOR_CHIRP_CONFIG": str(path)}


def test_publishes_chirp_attributes(config):
    """Rule: with a chirp config, one commit sets ChirpCkptCount, ChirpCkptLastTime,
    ChirpCkptSeconds (and ChirpCkptBytes) as ClassAd literals through set_job_attr_delayed."""
    ok = chirp.publish_commit(
        3, 1700000000.75, 1.23456, 4096, environ=config, factory=FakeChirp, wait=True
    )
    assert ok
    [fake] = FakeChirp.instances
    assert fake.attrs == {
        "ChirpCkptCount": "3",
        "ChirpCkptLastTime": "1700000000",
        "ChirpCkptSeconds": "1.235",
        "ChirpCkptBytes": "4096",
    }
    assert fake.closed
    assert all(name.startswith("Chirp") for name in fake.attrs)  # no WantIOProxy needed


def test_background_publication(config):
    """Rule: by default the exchange runs on a thread; the call returns before it ends, and a
    call made while one is still running is dropped, not queued."""
    gate = threading.Event()
    assert chirp.publish_commit(
        1, 1.0, 0.5, environ=config, factory=lambda c: FakeChirp(c, gate=gate)
    )
    assert not chirp.publish_commit(2, 2.0, 0.5, environ=config, factory=FakeChirp)
    gate.set()
    sleep_until(lambda: not chirp._busy.locked(), timeout=5)
    assert [f.attrs["ChirpCkptCount"] for f in FakeChirp.instances] == ["1"]


def test_skips_without_config(tmp_path):
    """Rule: without $_CONDOR_CHIRP_CONFIG, or when it names no file, nothing is attempted."""
    assert not chirp.publish_commit(1, 1.0, 0.1, environ={}, factory=FakeChirp, wait=True)
    missing = {"_CONDOR_CHIRP_CONFIG": str(tmp_path / "nope")}
    assert not chirp.publish_commit(1, 1.0, 0.1, environ=missing, factory=FakeChirp, wait=True)
    assert FakeChirp.instances == []


@pytest.mark.parametrize("fail", ["connect", "call"])
def test_failure_never_raises_and_disables(config, fail):
    """Rule: a chirp failure is swallowed, logged once, and later commits do not try again."""
    lines: list[str] = []
    ok = chirp.publish_commit(
        1,
        1.0,
        0.1,
        environ=config,
        factory=lambda c: FakeChirp(c, fail=fail),
        log=lines.append,
        wait=True,
    )
    assert not ok
    assert len(lines) == 1 and "chirp" in lines[0]
    assert not chirp.publish_commit(2, 2.0, 0.1, environ=config, factory=FakeChirp, wait=True)
    assert all(not f.attrs for f in FakeChirp.instances)


def test_missing_wheel_is_quiet(config, monkeypatch):
    """Rule: without the htcondor wheel the default factory's ImportError is quiet (no log)."""
    real_import = builtins.__import__

    def no_htcondor(name, *args, **kwargs):
        if name.startswith("htcondor2"):
            raise ImportError("No module named 'htcondor2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_htcondor)
    lines: list[str] = []
    assert not chirp.publish_commit(1, 1.0, 0.1, environ=config, log=lines.append, wait=True)
    assert lines == []


def test_real_htchirp_against_a_dead_server(tmp_path):
    """Rule: with the real htcondor2 HTChirp and nothing listening, the call still returns
    False without raising (the connection is refused at once)."""
    pytest.importorskip("htcondor2.htchirp", reason="the htcondor wheel is not installed")
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / ".chirp.config"
    path.write_text(f"127.0.0.1 {port} cookie\n")
    assert not chirp.publish_commit(
        1, 1.0, 0.1, environ={"_CONDOR_CHIRP_CONFIG": str(path)}, wait=True
    )

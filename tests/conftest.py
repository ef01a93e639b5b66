import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# tests/ on sys.path: the support package is imported as ``from support.helpers import ...``
sys.path.insert(0, str(Path(__file__).resolve().parent))
# A shell starts background jobs (`cmd &`) with SIGINT and SIGQUIT ignored, and an ignored
# signal stays ignored across exec: the supervisor (rightly) keeps its caller's ignored set, so
# the tests that send those signals would see nothing. Tests start from the default dispositions.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGQUIT) is signal.SIG_IGN:
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
# The htcondor wheel (a test oracle only) must not look for a pool configuration.
os.environ.setdefault("CONDOR_CONFIG", "/dev/null")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A scratch directory, as HTCondor's sandbox; the supervisor runs with it as cwd."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    """An exit stack closed after the test (background dry runs register their clean-up on it)."""
    with contextlib.ExitStack() as s:
        yield s


@pytest.fixture(scope="session")
def htcondor2():
    """The htcondor wheel as an oracle (offline: CONDOR_CONFIG=/dev/null before the import)."""
    os.environ["CONDOR_CONFIG"] = "/dev/null"
    return pytest.importorskip("htcondor2", reason="the htcondor wheel is not installed")


# Settings a developer's shell (or an HTCondor job) may carry that would change what the code
# under test does; the tests' own switches (CKPT_TEST_*, CKPT_SLOW_TESTS) are kept.
_KEEP = ("CKPT_TEST_", "CKPT_SLOW_TESTS")


@pytest.fixture(autouse=True)
def _clean_settings_environment(monkeypatch):
    """Every test starts without CKPT_* and _CONDOR_* settings from the environment it ran in."""
    for name in list(os.environ):
        if (name.startswith("CKPT_") and not name.startswith(_KEEP)) or name.startswith("_CONDOR_"):
            monkeypatch.delenv(name)


# Four xdist workers take tests from the front of the collected list as they free up: a test of
# a few minutes that comes last keeps one worker busy after the others are done. The kinds that
# wait longest (the real pool, the real programs, DMTCP) are collected first, so that the quick
# unit tests fill the gaps at the end. Files keep their order within a kind (module fixtures).
_FIRST = ("htcondor", "realapp", "dmtcp", "e2e", "reliability", "process")


def pytest_collection_modifyitems(config, items):
    def kind(item: pytest.Item) -> int:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        return _FIRST.index(parts[0]) if len(parts) > 1 and parts[0] in _FIRST else len(_FIRST)

    items.sort(key=kind)

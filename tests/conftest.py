import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The htcondor wheel (a test oracle only) must not look for a pool configuration.
os.environ.setdefault("CONDOR_CONFIG", "/dev/null")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A scratch directory, as HTCondor's sandbox; the supervisor runs with it as cwd."""
    monkeypatch.chdir(tmp_path)
    return tmp_path

"""The soak (bench/soak.py) in CI: a few seconds with several seeds (issue 6, "Soak").

The rule: under random checkpoint signals, evictions and kill -9 of the whole execution, the store
verifies after every execution, never goes backwards, 85 comes only with a verified commit, and
every job's final result equals an uninterrupted run's, byte for byte.
"""

from __future__ import annotations

import pytest
from support.helpers import load_bench


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [11, 12])
def test_soak_short(seed):
    """About 12 s of random triggers, evictions and kill -9 per seed: no failure, some jobs done.
    At least 4 executions however slow the machine: the soak goes on past its 12 s until then."""
    report = load_bench("soak").run(12, seed=seed, steps=150, min_executions=4)
    print(report.line())
    assert report.failures == []
    assert report.jobs >= 1 and report.executions >= 4


@pytest.mark.slow
@pytest.mark.timeout(3 * 3600)
def test_soak_long():
    """The long variant: 10 minutes (python bench/soak.py --hours H for more)."""
    report = load_bench("soak").run(600, seed=7)
    print(report.line())
    assert report.failures == []

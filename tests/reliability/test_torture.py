"""The torn-checkpoint torture, quick variant (issue 12; the long one: ``bench/torture.py``).

Programs that rewrite single-file and multi-file checkpoints in place at random intervals from
1 ms to 1 s, under every trigger mode (--watch, --every with a job signal, HTCondor's checkpoint
signal, --inspect-on-exit) and every completion rule (marker=, quiet=, command=, closed, log=,
exit), each paired with a writer the docs call safe for it; evictions at random moments through
``run`` and through the dry run. Every committed store is checked by the program's own check
(all files complete and of one step); the program checks what it was restored from at each
start. The rule: zero mixed or torn stores, and checkpoints still committed for the continuous
writers. No timing is asserted: each scenario runs for a short while and then until it has
committed once.
"""

from __future__ import annotations

import pytest
from support import torture


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", [s.name for s in torture.SCENARIOS])
def test_torture_via_run(tmp_path, name):
    """One scenario through ``ckpt-supervisor run``, evicted (SIGTERM) at random moments from
    1 ms to 1.5 s in half of its executions: no mixed or torn store, no torn restore, and at
    least one checkpoint committed."""
    res = torture.via_run(torture.BY_NAME[name], tmp_path, seconds=1.0, seed=12, size=128 << 10,
                          min_commits=1, max_seconds=90)
    assert res.bad == [], res.as_dict()
    assert res.commits >= 1 and res.checks >= 1, res.as_dict()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", ["watch-marker-multi", "signal-marker-multi"])
def test_torture_via_dry_run(tmp_path, name):
    """A continuous multi-file writer through ``ckpt-supervisor dry-run`` with evictions at
    random moments (mean 0.7 s) and, for the signal scenario, HTCondor's checkpoint signal: the
    job finishes (exit 0), checkpoints were committed, and no start found a torn checkpoint."""
    # The program's pauses between checkpoints are seeded (seed 5): 5 steps take at least 1.3 s
    # and 12 at least 3.2 s of sleep, on any machine. An execution from scratch then outlives the
    # 0.7 s checkpoint signal unless an eviction ends it first, and the job cannot finish without
    # one such execution or a commit: a checkpoint is committed whatever the machine's speed (with
    # the program's pauses seeded from its pid, a run of 12 short pauses once finished in 0.8 s,
    # before any signal).
    steps = 12 if name.startswith("signal") else 5
    res = torture.via_dryrun(torture.BY_NAME[name], tmp_path, steps=steps, seed=5, evict_mean=0.7,
                             size=128 << 10, timeout=150)
    assert res.bad == [], res.as_dict()
    assert res.commits >= 1, res.as_dict()

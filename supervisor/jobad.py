"""Read HTCondor's job ad (``$_CONDOR_JOB_AD``) and write ClassAd literals.

STUB: filled in by the job-ad work (issue 2). Interface (fixed):

- ``parse_literal(text: str) -> str | int | float | bool | None``: one ClassAd literal
  (quoted string with ClassAd escapes, true/false in any case, integers, reals, undefined).
  Raises ``JobAdError`` for anything that is not a literal.
- ``read_job_ad(path) -> JobAd``: old-style ``Attr = value`` lines; attribute names are
  case-insensitive; values that are expressions are kept as raw text (``Expression``) and never
  fail the read; only a line that is not ``Name = something`` is an error (with line number).
- ``checkpoint_defaults(ad: JobAd) -> dict``: the keys ``exit_code``, ``exit_by_signal``,
  ``exit_signal``, ``want_checkpoint_signal``, ``checkpoint_signal``, ``kill_signal``,
  ``max_vacate_time`` taken from SuccessCheckpointExitCode, SuccessCheckpointExitBySignal,
  SuccessCheckpointExitSignal, WantCheckpointSignal, CheckpointSig, KillSig, JobMaxVacateTime;
  absent attributes are absent keys; signals are returned as numbers.
- ``format_value(value) -> str`` and ``format_ad(attrs: Mapping[str, object]) -> str``: write
  literals and a whole ad in the same old-style syntax (used by the dry run to write .job.ad).
"""

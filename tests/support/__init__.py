"""The tests' one support package, imported as ``support`` (tests/conftest.py puts tests/ on sys.path).

helpers (processes, polling, the paths), victims/ (the programs the tests supervise), dryrun (the
dry-run tests' runner), relutil (the reliability suite's runs and checks), torture and batch_cli
(driven by tests and by bench/), realapp_util, poolkit (the real-pool tier) and dmtcp_programs.
"""

"""The one option table (supervisor/options.py): a row is an option everywhere, and bad values
are one-line usage errors (exit 64) wherever they come from."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from support.helpers import ROOT

from supervisor import config, exitstatus, options
from supervisor.__main__ import main_parser
from supervisor.condor import check, dryrun

NEW_RUN = options.Option("nap-time", "seconds to nap before starting PROGRAM", options.seconds("nap-time"),
                         default=1.5, metavar="SECONDS", attr="NapTime", submit="+NapTime")
NEW_DRY = options.Option("nap-every", "nap every S seconds", options.duration("nap-every", positive=True),
                         metavar="S", command="dry-run", env_prefix=options.DRYRUN_ENV_PREFIX, toml=False)


def _gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_gen", ROOT / "docs" / "gen.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def new_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """One more run row and one more dry-run row, as a maintainer would add them."""
    run = (*options.RUN, NEW_RUN)
    dry = (*options.DRYRUN, NEW_DRY)
    monkeypatch.setattr(options, "RUN", run)
    monkeypatch.setattr(options, "DRYRUN", dry)
    monkeypatch.setattr(options, "BY_DEST", {o.dest: o for o in run})
    monkeypatch.setattr(options, "TABLE", {**options.TABLE, "run": run, "dry-run": dry,
                                           "submit-snippet": run + options.SNIPPET})


def _help(parser: argparse.ArgumentParser, *words: str) -> str:
    sub = parser
    for word in words:
        action = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
        sub = action.choices[word]
    return sub.format_help()


def test_a_new_row_is_an_option_everywhere(new_rows: None, tmp_path: Path) -> None:
    """Rule: one row of options.RUN is a flag of run and submit-snippet (with its environment
    twin in --help), a flag check understands, an environment variable, a TOML key, an attribute
    of RunConfig with its default, and a line of cli.md, configuration.md and environment.md; one
    row of options.DRYRUN is a dry-run flag with its CKPT_DRYRUN_ twin, in the docs too."""
    parser = main_parser()
    for command in ("run", "submit-snippet"):
        text = " ".join(_help(parser, command).split())
        assert "--nap-time SECONDS" in text and "[env CKPT_NAP_TIME]" in text, command
    dry_help = " ".join(_help(parser, "dry-run").split())
    assert "--nap-every S" in dry_help and "[env CKPT_DRYRUN_NAP_EVERY]" in dry_help
    assert check.run_option_parser().parse_args(["--nap-time", "3", "--", "x"]).nap_time == "3"

    run = main_parser(only="run")
    assert config.build(run.parse_args(["run", "--", "x"]), environ={}).nap_time == 1.5
    assert config.build(run.parse_args(["run", "--nap-time", "2", "--", "x"]), environ={}).nap_time == 2.0
    cfg = config.build(run.parse_args(["run", "--", "x"]), environ={"CKPT_NAP_TIME": "4"})
    assert cfg.nap_time == 4.0 and cfg.sources["nap_time"] == "environment"
    toml = tmp_path / "run.toml"
    toml.write_text("nap-time = 5\n")
    assert config.build(run.parse_args(["run", "--config", str(toml), "--", "x"]), environ={}).nap_time == 5.0
    assert not config.unknown_env_warnings({"CKPT_NAP_TIME": "1"})

    gen = _gen()
    assert "`--nap-time SECONDS`" in gen.cli_page() and "`--nap-every S`" in gen.cli_page()
    conf = gen.configuration_page()
    assert "| `nap-time` | `--nap-time SECONDS` | `CKPT_NAP_TIME` | `1.5` | NapTime |" in conf
    assert "| `--nap-time` | +NapTime |" in conf
    env = gen.environment_page()
    assert "| `CKPT_NAP_TIME` | `--nap-time` (SECONDS) |" in env and "`CKPT_DRYRUN_NAP_EVERY`" in env
    assert "`--nap-every S`" in gen.dryrun_options_block()


def test_a_bad_new_value_names_the_option(new_rows: None) -> None:
    """Rule: a bad value of a new row is a ConfigError (exit 64) naming the option and, from
    the environment, the variable."""
    run = main_parser(only="run")
    with pytest.raises(options.ConfigError, match=r"^--nap-time: 'x' is not a number of seconds "
                                                  r"\(from the environment variable CKPT_NAP_TIME\)$"):
        config.build(run.parse_args(["run", "--", "x"]), environ={"CKPT_NAP_TIME": "x"})


def test_every_row_is_in_its_parser() -> None:
    """Rule: every row of the table is a flag of its command's parser, and nothing else is."""
    parser = main_parser()
    for command, rows in options.TABLE.items():
        sub = parser
        action = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
        flags = {s for a in action.choices[command]._actions for s in a.option_strings}
        extra = {"-h", "--help"} | ({"--config"} if command in ("run", "submit-snippet") else set())
        extra |= {"-v", "--verbose", "-q", "--quiet"} if command == "run" else set()
        assert flags - extra == {f"--{o.name}" for o in rows}, command


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CKPT_", "_CONDOR_"))}
    return subprocess.run([sys.executable, "-m", "supervisor", *args], cwd=cwd, capture_output=True, text=True,
                          env={**base, "PYTHONPATH": str(ROOT), **env}, timeout=30, check=False)


@pytest.mark.parametrize("name", [o.env for o in options.DRYRUN if o.flag])
def test_garbage_boolean_env_is_a_usage_error_for_dry_run(tmp_path: Path, name: str) -> None:
    """Rule: a CKPT_DRYRUN_* switch that is neither true nor false (formerly read as false) is
    one line naming the variable and the values it takes, exit 64; nothing runs."""
    (tmp_path / "job.submit").write_text("executable = /bin/true\nlog = j.log\nqueue\n")
    done = _cli(["dry-run", "job.submit"], {name: "maybe"}, tmp_path)
    assert done.returncode == exitstatus.EXIT_USAGE, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and name in lines[0] and "'maybe' is not true or false" in lines[0], lines
    assert not (tmp_path / "j.log").exists()


def test_garbage_boolean_env_is_a_usage_error_for_run(tmp_path: Path) -> None:
    """Rule: the same for run's switches (CKPT_WATCH=maybe): one line, exit 64, PROGRAM not run."""
    done = _cli(["run", "--", "touch", "started"], {"CKPT_WATCH": "maybe"}, tmp_path)
    assert done.returncode == exitstatus.EXIT_USAGE, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "CKPT_WATCH" in lines[0] and "--watch" in lines[0], lines
    assert not (tmp_path / "started").exists()


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("TRUE", True), ("on", True), ("no", False),
                                                 ("", False), ("0", False)])
def test_boolean_env_words(value: str, expected: bool) -> None:
    """Rule: a switch's environment twin takes 1/0, true/false, yes/no, on/off (any case; empty
    is false), for the dry run as for run."""
    args = argparse.Namespace(submit_file="x.submit", **{o.dest: None for o in options.DRYRUN})
    opts = dryrun.options_from_args(args, {"CKPT_DRYRUN_KEEP": value})
    assert opts.keep is expected


def test_dry_run_settings_come_from_the_table() -> None:
    """Rule: the dry run's settings object has one field per row, with the row's default."""
    args = argparse.Namespace(submit_file="x.submit", **{o.dest: None for o in options.DRYRUN})
    opts = dryrun.options_from_args(args, {})
    for opt in options.DRYRUN:
        value = getattr(opts, opt.dest)
        assert value == (list(opt.empty) if opt.multiple else opt.empty), opt.name

"""``run --dmtcp`` with DMTCP missing or misplaced: a one-line error and status 64 (no DMTCP needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.helpers import ROOT


def _run(sandbox, *args: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "PYTHONPATH": str(ROOT), "HOME": str(sandbox)}
    return subprocess.run([sys.executable, "-m", "supervisor", "run", "--dmtcp", *args, "--", "true"],
                          cwd=sandbox, env=env, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.timeout(60)
def test_no_dmtcp_on_path_is_a_usage_error(tmp_path):
    """Without DMTCP on PATH and without --dmtcp-prefix, run says what to do and exits 64,
    before anything is started."""
    proc = _run(tmp_path)
    assert proc.returncode == 64, proc.stderr
    assert "dmtcp_launch is not on PATH" in proc.stderr and "--dmtcp-prefix" in proc.stderr
    assert not (tmp_path / "checkpoint.atomic").exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("prefix", ["missing.tar.xz", "empty-folder"])
def test_a_bad_dmtcp_prefix_is_a_usage_error(tmp_path, prefix):
    """--dmtcp-prefix naming nothing, or a folder without bin/dmtcp_launch: status 64 and a
    message naming the option."""
    (tmp_path / "empty-folder").mkdir()
    proc = _run(tmp_path, "--dmtcp-prefix", prefix)
    assert proc.returncode == 64, proc.stderr
    assert f"--dmtcp-prefix {prefix}" in proc.stderr


@pytest.mark.timeout(60)
def test_the_images_folder_cannot_be_a_checkpoint_path(tmp_path):
    """--checkpoint dmtcp.ckpt would collide with the images: refused with status 64."""
    proc = _run(tmp_path, "--checkpoint", "dmtcp.ckpt")
    assert proc.returncode == 64, proc.stderr
    assert "dmtcp.ckpt" in proc.stderr


# ../shared/dmtcp next to the repository (or next to the folder of worktrees)
ARCHIVES = [p / "shared" / "dmtcp" / "dmtcp-4.2.0-debian12-x86_64.tar.xz" for p in (ROOT.parent, ROOT.parent.parent)]
ARCHIVE = next((a for a in ARCHIVES if a.is_file()), None)


@pytest.mark.timeout(120)
@pytest.mark.skipif(ARCHIVE is None, reason="the shared DMTCP archive (../shared/dmtcp) is not here")
def test_an_archive_prefix_is_unpacked_into_the_sandbox(tmp_path):
    """--dmtcp-prefix ARCHIVE (shipped with the job) is unpacked into the sandbox and used: a
    program that ends by itself passes its status through."""
    import shutil

    archive = ARCHIVE
    assert archive is not None
    shutil.copy(archive, tmp_path / archive.name)
    proc = _run(tmp_path, "--dmtcp-prefix", archive.name)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / ".dmtcp-install" / "dmtcp" / "bin" / "dmtcp_launch").is_file()


def test_flag_environment_and_toml_twins(tmp_path):
    """--dmtcp and --dmtcp-prefix have their CKPT_ environment variables and TOML keys like every
    option; with --dmtcp the images folder is a checkpoint path and a checkpoint is complete once
    the program stopped and the images are all written."""
    import argparse

    from supervisor import config

    parser = argparse.ArgumentParser()
    config.add_run_options(parser)
    parser.add_argument("program", nargs="*")
    toml = tmp_path / "run.toml"
    toml.write_text('dmtcp = true\ndmtcp-prefix = "dmtcp.tar.xz"\n')
    from_file = config.build(parser.parse_args(["--config", str(toml), "--", "x"]), environ={})
    from_env = config.build(parser.parse_args(["--checkpoint", "out.txt", "--", "x"]),
                            environ={"CKPT_DMTCP": "1", "CKPT_DMTCP_PREFIX": "/opt/dmtcp"})
    from_flag = config.build(parser.parse_args(["--dmtcp", "--dmtcp-prefix", "d", "--", "x"]), environ={})
    assert (from_file.dmtcp, from_file.dmtcp_prefix) == (True, "dmtcp.tar.xz")
    assert (from_env.dmtcp, from_env.dmtcp_prefix, from_env.checkpoint) == (True, "/opt/dmtcp", ("out.txt", "dmtcp.ckpt"))
    assert (from_flag.dmtcp, from_flag.dmtcp_prefix) == (True, "d")
    assert from_flag.complete_when == ("exit", "marker=dmtcp.ckpt/complete")
    plain = config.build(parser.parse_args(["--", "x"]), environ={})
    assert (plain.dmtcp, plain.checkpoint) == (False, ())

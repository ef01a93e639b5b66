"""Transparent checkpoints with DMTCP (``run --dmtcp``): everything that knows about DMTCP.

The run loop calls a :class:`Session` at five points: where the program is spawned (the launch or
restart command line and its working directory), when a checkpoint is requested, when the program
ends during a checkpoint (wait until the images are complete), what a commit records, and at the
end (outputs back into the sandbox, nothing left behind).

The stable path. HTCondor gives every execution a sandbox at a new path, and DMTCP reopens the
files a program holds open by their absolute path (and keeps its own saved files under the
absolute checkpoint directory). So the program does not run in the sandbox: it runs in a
*work directory* at a path that is the same on every execution, ``/tmp/ckpt-dmtcp-<token>``
(``$CKPT_DMTCP_STABLE_ROOT`` instead of ``/tmp``), where the token is random, made at the job's
first start and kept in the committed checkpoint's state, so no two jobs share one. Each start
empties it, links the sandbox's entries into it, and restores the store into it; at the end the
files the program made are moved back into the sandbox and the work directory is removed.

The checkpoint. A request is ``dmtcp_command --kcheckpoint`` to the job's private coordinator
(``--new-coordinator --coord-port 0 --port-file``: the kernel picks a free port): every process
writes its image and exits without running one more instruction, so the ``--checkpoint`` files
match the images exactly. The coordinator's restart script, rewritten once every image is on
disk, says the checkpoint is complete; we then write ``dmtcp.ckpt/complete`` (the marker that the
completion rule waits for) and the store commits images and files as one checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

from .errors import ConfigError

IMAGES = "dmtcp.ckpt"  # the images directory, relative to the work directory (committed)
MARKER = IMAGES + "/complete"  # written once a checkpoint's images are all on disk
PORT_FILE = ".dmtcp-port"
INSTALL_DIR = ".dmtcp-install"  # where a shipped archive is unpacked, in the sandbox
STATE_KEY = "dmtcp_token"
PORT_WAIT = 30.0  # seconds to wait for the coordinator's port file / the first peer
COMPLETE_WAIT = 120.0  # seconds to wait for the images after the program stopped
POLL = 0.02


def adjust(merged: dict[str, Any]) -> None:
    """Option defaults of ``--dmtcp`` (called by config.build): the images are a checkpoint path,
    and a checkpoint is complete once the program stopped and the marker was written."""
    if not merged.get("dmtcp"):
        return
    paths = tuple(merged.get("checkpoint") or ())
    for p in paths:
        if p.rstrip("/").split("/")[0] in (IMAGES, PORT_FILE):
            raise ConfigError(f"--checkpoint {p}: {IMAGES} is where --dmtcp keeps its images; "
                              "name another path")
    merged["checkpoint"] = (*paths, IMAGES)
    if not merged.get("complete_when"):
        merged["complete_when"] = ("exit", f"marker={MARKER}")


def microarch(cpuinfo: str = "/proc/cpuinfo") -> str:
    """This machine's x86-64 micro-architecture level, as HTCondor's ``Microarch`` attribute
    names it (``x86_64-v1`` ... ``x86_64-v4``): a DMTCP image resumes only on the same family."""
    flags: set[str] = set()
    with contextlib.suppress(OSError), open(cpuinfo) as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    levels = [
        ("x86_64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
        ("x86_64-v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
        ("x86_64-v2", {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}),
    ]
    v2 = levels[2][1] <= flags
    v3 = v2 and levels[1][1] <= flags
    if v3 and levels[0][1] <= flags:
        return "x86_64-v4"
    return "x86_64-v3" if v3 else "x86_64-v2" if v2 else "x86_64-v1"


# ------------------------------------------------------------------ locating DMTCP
def _bin_in(folder: str) -> Optional[str]:
    for cand in (folder, os.path.join(folder, "bin"), os.path.join(folder, "dmtcp", "bin")):
        if os.path.isfile(os.path.join(cand, "dmtcp_launch")) and os.access(
                os.path.join(cand, "dmtcp_launch"), os.X_OK):
            return os.path.abspath(cand)
    for entry in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        sub = os.path.join(folder, entry, "bin")
        if os.path.isfile(os.path.join(sub, "dmtcp_launch")):
            return os.path.abspath(sub)
    return None


def locate(prefix: Optional[str], sandbox: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """The folder holding dmtcp_launch: from ``--dmtcp-prefix`` (a folder, or a .tar.xz/.tar.gz
    unpacked into the sandbox), else from PATH. Raises ConfigError naming what to do."""
    env = os.environ if environ is None else environ
    if prefix:
        path = prefix if os.path.isabs(prefix) else os.path.join(sandbox, prefix)
        if os.path.isdir(path):
            found = _bin_in(path)
            if found is None:
                raise ConfigError(f"--dmtcp-prefix {prefix}: no bin/dmtcp_launch in it; give DMTCP's "
                                  "install folder (the one holding bin/) or its .tar.xz archive")
            return found
        if os.path.isfile(path) and re.search(r"\.(tar\.xz|txz|tar\.gz|tgz|tar)$", path):
            dest = os.path.join(sandbox, INSTALL_DIR)
            found = _bin_in(dest) if os.path.isdir(dest) else None
            if found is None:
                shutil.rmtree(dest, ignore_errors=True)
                os.makedirs(dest)
                import tarfile  # only for an archive: ~1 MB of RSS for the whole run otherwise

                try:
                    with tarfile.open(path) as tar:
                        tar.extractall(dest)  # the job's own archive, into its sandbox
                except (tarfile.TarError, OSError) as exc:
                    raise ConfigError(f"--dmtcp-prefix {prefix}: cannot unpack it ({exc})") from exc
                found = _bin_in(dest)
            if found is None:
                raise ConfigError(f"--dmtcp-prefix {prefix}: the archive holds no bin/dmtcp_launch")
            return found
        raise ConfigError(f"--dmtcp-prefix {prefix}: no such folder or .tar.xz/.tar.gz archive; "
                          "ship DMTCP with the job (transfer_input_files) or install it on PATH")
    launch = shutil.which("dmtcp_launch", path=env.get("PATH", os.defpath))
    if launch is None:
        raise ConfigError("--dmtcp: dmtcp_launch is not on PATH; install DMTCP, or ship its archive "
                          "with the job and give --dmtcp-prefix dmtcp-4.2.0.tar.xz")
    return os.path.dirname(os.path.abspath(launch))


def available(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The bin folder of a usable DMTCP on PATH (or $CKPT_DMTCP_PREFIX), or None (tests skip)."""
    env = os.environ if environ is None else environ
    try:
        return locate(env.get("CKPT_DMTCP_PREFIX"), os.getcwd(), env)
    except ConfigError:
        return None


# ------------------------------------------------------------------ one job's DMTCP
class Session:
    """DMTCP for one execution of the supervisor."""

    def __init__(self, cfg: Any, emit: Callable[..., None]) -> None:
        self.cfg = cfg
        self.emit = emit
        self.sandbox = cfg.sandbox
        self.bin = ""
        self.token = ""
        self.workdir = ""
        self.request_at: Optional[float] = None
        self.request_wall = 0.0
        self.request_error: Optional[str] = None
        self.thread: Optional[threading.Thread] = None
        self.linked: set[str] = set()

    # ---------------------------------------------------------------- start
    def prepare(self, state: Optional[dict[str, Any]]) -> str:
        """Locate DMTCP and make the work directory; returns it (the store's base directory)."""
        self.bin = locate(self.cfg.dmtcp_prefix, self.sandbox)
        token = (state or {}).get(STATE_KEY)
        if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{16,64}", token):
            token = os.urandom(12).hex()  # secrets.token_hex(12), without hmac/hashlib (OpenSSL: ~4 MB of RSS)
        self.token = token
        root = os.environ.get("CKPT_DMTCP_STABLE_ROOT") or "/tmp"
        self.workdir = os.path.join(root, f"ckpt-dmtcp-{token}")
        # a work directory left by an earlier execution of this job on this machine: ours to empty
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(os.path.join(self.workdir, IMAGES), mode=0o700)
        return self.workdir

    def link_inputs(self) -> None:
        """The sandbox's entries appear in the work directory (symlinks), except checkpoint paths
        (restored into the work directory) and the store."""
        skip = {p.rstrip("/").split("/")[0] for p in self.cfg.checkpoint}
        skip |= {self.cfg.store.rstrip("/").split("/")[0], INSTALL_DIR}
        for name in os.listdir(self.sandbox):
            dst = os.path.join(self.workdir, name)
            if name in skip or os.path.lexists(dst):
                continue
            os.symlink(os.path.join(self.sandbox, name), dst)
            self.linked.add(name)

    def state(self) -> dict[str, Any]:
        return {STATE_KEY: self.token}

    def _tool(self, name: str) -> str:
        return os.path.join(self.bin, name)

    def argv(self, program: list[str], resume: bool) -> list[str]:
        """The command line that starts (or resumes) the program under a private coordinator, in
        the work directory."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.workdir, PORT_FILE))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.workdir, MARKER))
        coord = ["--new-coordinator", "--coord-port", "0", "--port-file",
                 os.path.join(self.workdir, PORT_FILE), "-q"]
        ckptdir = os.path.join(self.workdir, IMAGES)
        if resume:
            images = self.images()
            if not images:
                raise ConfigError(f"--dmtcp: the restored checkpoint has no DMTCP image in {IMAGES}; "
                                  f"remove {self.cfg.store} to start from scratch")
            inner = [self._tool("dmtcp_restart"), *coord, "--ckptdir", ckptdir, *images]
            self.emit("dmtcp_restart", {"images": len(images), "workdir": self.workdir})
        else:
            inner = [self._tool("dmtcp_launch"), *coord, "--ckptdir", ckptdir, *program]
            self.emit("dmtcp_launch", {"workdir": self.workdir, "bin": self.bin})
        # the program's working directory is the stable one; exec keeps the PID
        # (the coordinator writes its restart script to $DMTCP_CHECKPOINT_DIR, else to its cwd)
        return ["/bin/sh", "-c", 'cd "$1" || exit 127; DMTCP_CHECKPOINT_DIR="$2"; export DMTCP_CHECKPOINT_DIR; '
                'shift 2; exec "$@"', "sh", self.workdir, ckptdir, *inner]

    def images(self) -> list[str]:
        """The images of the last checkpoint in the work directory (the restart script lists
        them; an image of a process that had exited by then is not one of them)."""
        folder = os.path.join(self.workdir, IMAGES)
        names: list[str] = []
        with contextlib.suppress(OSError, ValueError), open(os.path.join(folder, "complete")) as f:
            names = list(json.load(f).get("images", []))
        if not names:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".dmtcp"))
        return [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]

    # ---------------------------------------------------------------- checkpoint
    @property
    def requested(self) -> bool:
        return self.request_at is not None

    def request(self) -> None:
        """Ask the coordinator for a checkpoint after which every process exits (in a thread:
        the coordinator may not be listening yet)."""
        if self.thread is not None and self.thread.is_alive():
            return
        self.request_at = time.monotonic()
        self.request_wall = time.time()
        self.request_error = None
        self.thread = threading.Thread(target=self._send_request, name="dmtcp-request", daemon=True)
        self.thread.start()

    def _port(self, deadline: float) -> Optional[str]:
        path = os.path.join(self.workdir, PORT_FILE)
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with open(path) as f:
                    text = f.read().strip()
                if text.isdigit():
                    return text
            time.sleep(POLL)
        return None

    def _command(self, port: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self._tool("dmtcp_command"), "--coord-port", port, *args],
                              capture_output=True, text=True, timeout=30, check=False,
                              stdin=subprocess.DEVNULL)

    def _send_request(self) -> None:
        deadline = time.monotonic() + PORT_WAIT
        port = self._port(deadline)
        if port is None:
            self.request_error = "the DMTCP coordinator wrote no port file"
            return
        try:
            while time.monotonic() < deadline:
                status = self._command(port, "--status").stdout
                if re.search(r"NUM_PEERS=[1-9]", status) and "RUNNING=yes" in status:
                    break
                time.sleep(0.05)
            done = self._command(port, "--kcheckpoint")
        except (OSError, subprocess.SubprocessError) as exc:
            self.request_error = f"dmtcp_command failed: {exc}"
            return
        if done.returncode != 0 and "checkpointed" not in done.stdout:
            self.request_error = f"dmtcp_command --kcheckpoint: {done.stderr.strip() or done.returncode}"

    def wait_complete(self, alive: Callable[[], bool]) -> bool:
        """The program ended after our request: wait until the coordinator has written its
        restart script (every image is on disk), then write the marker. False: no checkpoint."""
        if self.request_at is None:
            return False
        if self.thread is not None:
            self.thread.join(PORT_WAIT + 35)
        folder = os.path.join(self.workdir, IMAGES)
        script = os.path.join(folder, "dmtcp_restart_script.sh")
        deadline = time.monotonic() + COMPLETE_WAIT

        def complete() -> list[str]:
            """The images the fresh restart script lists, once all of them are on disk."""
            try:
                if os.stat(script).st_mtime < self.request_wall - 1:
                    return []
                with open(script) as f:
                    m = re.search(r'^given_ckpt_files="([^"]*)"', f.read(), re.M)
            except OSError:
                return []
            given = m.group(1).split() if m else []
            if given and all(os.path.isfile(os.path.join(folder, os.path.basename(g))) for g in given):
                return given
            return []

        given: list[str] = []
        while time.monotonic() < deadline:
            given = complete()
            if given:
                break
            if not alive():
                # the coordinator writes the script and then exits: look once more, after
                # seeing it gone, or a script written between the two looks would be missed
                given = complete()
                break
            time.sleep(POLL)
        seconds = time.monotonic() - self.request_at
        self.request_at = None
        if not given:
            self.emit("dmtcp_checkpoint_failed", {"error": self.request_error or "no restart script"},
                      level="warning", message="DMTCP wrote no complete checkpoint: "
                      + (self.request_error or "the coordinator wrote no restart script"))
            return False
        names = [os.path.basename(g) for g in given]
        size = 0
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                size += entry.stat(follow_symlinks=False).st_size if entry.is_file(follow_symlinks=False) \
                    else sum(os.path.getsize(os.path.join(r, n)) for r, _d, fs in os.walk(entry.path) for n in fs)
        # HTCondor transfers a symlink as a file (or refuses one to a folder): keep none
        with contextlib.suppress(OSError):
            os.unlink(script)
        # drop images of processes that are not part of this checkpoint
        for name in os.listdir(folder):
            if name.endswith(".dmtcp") and name not in names:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
        tmp = os.path.join(folder, ".complete.tmp")
        with open(tmp, "w") as f:
            json.dump({"images": names, "bytes": size, "seconds": round(seconds, 3)}, f)
        os.replace(tmp, os.path.join(folder, "complete"))
        # the rename changed the folder's mtime, maybe a clock tick after the marker's own: the
        # marker rule wants the marker no older than what it marks (the folder included), so it
        # is touched after the rename (this waits in a thread: the loop may run in between)
        with contextlib.suppress(OSError):
            os.utime(os.path.join(folder, "complete"))
        self.emit("dmtcp_checkpoint", {"images": len(names), "bytes": size, "seconds": round(seconds, 3)},
                  message=f"DMTCP checkpoint: {len(names)} image(s), {size} bytes in {seconds:.2f} s")
        return True

    # ---------------------------------------------------------------- end
    def finish(self) -> None:
        """Move what the program made back into the sandbox (HTCondor transfers it from there);
        remove the work directory."""
        if not self.workdir or not os.path.isdir(self.workdir):
            return
        skip = {IMAGES, PORT_FILE} | {p.rstrip("/").split("/")[0] for p in self.cfg.checkpoint}
        for name in os.listdir(self.workdir):
            src = os.path.join(self.workdir, name)
            if name in self.linked or name in skip or os.path.islink(src):
                continue
            dst = os.path.join(self.sandbox, name)
            with contextlib.suppress(OSError):
                if os.path.isdir(dst) and not os.path.islink(dst):
                    shutil.rmtree(dst)
                shutil.move(src, dst)
        # the checkpoint files (not the images) are results too once the program is done
        for p in self.cfg.checkpoint:
            top = p.rstrip("/").split("/")[0]
            src = os.path.join(self.workdir, top)
            if top == IMAGES or not os.path.lexists(src) or os.path.islink(src):
                continue
            dst = os.path.join(self.sandbox, top)
            with contextlib.suppress(OSError):
                if os.path.isdir(dst) and not os.path.islink(dst):
                    shutil.rmtree(dst)
                elif os.path.lexists(dst):
                    os.unlink(dst)
                shutil.move(src, dst)
        shutil.rmtree(self.workdir, ignore_errors=True)

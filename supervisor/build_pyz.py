"""Build ``dist/ckpt-supervisor.pyz``: the supervisor as one file to ship with a job.

Usage: ``python3 -m supervisor.build_pyz [-o dist/ckpt-supervisor.pyz] [--wheels DIR]``

The archive is a zipapp (stdlib ``zipapp``; nothing else is needed to build it) whose first line
is ``#!/usr/bin/env python3``. It holds this package, tenacity (pure Python) and psutil for
manylinux x86_64, taken from wheels that ``pip download`` fetches for CPython 3.9
(``--only-binary=:all: --platform manylinux2014_x86_64 --implementation cp``). psutil >= 5.9.6
publishes one ``cp36-abi3`` wheel that serves every CPython from 3.6 on; for an older psutil
without abi3 the builder fetches one wheel per CPython 3.9-3.13 and stores each.

At run time the archive's ``__main__`` (:data:`BOOTSTRAP`) extracts the packages once into a
cache directory, because a C extension cannot be imported from inside a zip file (the same
approach as shiv). The cache is chosen in this order, the first writable one winning:
``$CKPT_PYZ_CACHE``, ``$_CONDOR_SCRATCH_DIR/.ckpt-supervisor-pyz`` (the job's sandbox: it moves
with the job and is removed with it), ``$XDG_CACHE_HOME/ckpt-supervisor`` or
``~/.cache/ckpt-supervisor``, and ``$TMPDIR``. Each build has its own subdirectory, named after
the hash of the archive's contents and the psutil variant. Extraction goes to a temporary
directory beside it, which is renamed into place in one step: concurrent starts either win the
rename or use the winner's complete copy; a copy with missing or resized files is moved aside
and extracted again. The supervisor writes the bytecode of the modules it imports into its copy
even where the job's environment sets ``PYTHONDONTWRITEBYTECODE`` (else every start compiles
every module again); the manifest is a literal in ``__main__``, so a warm start imports nothing
to find its copy. On a machine that is not Linux x86_64 with glibc, a psutil
installed for that Python is used if there is one.

The wheels are cached in ``--wheels DIR`` when given (a directory that already holds them is
used without network access).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipapp
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from . import __version__

PLATFORM = "manylinux2014_x86_64"
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
REQUIREMENTS = ("psutil>=5.8", "tenacity>=8.0")
INTERPRETER = "/usr/bin/env python3"
MANIFEST = "_ckpt_pyz.json"
NATIVE = "_ckpt_native"
COMMON = "_ckpt_lib"
ROOT = Path(__file__).resolve().parent.parent

BOOTSTRAP = r'''"""ckpt-supervisor as a single file: extract once into a cache, then run.

Written by supervisor/build_pyz.py; see docs/howto/ship-the-supervisor.md.
A warm start imports nothing beyond os (the manifest is the literal below) and stats the
extracted files; zipfile, shutil and tempfile are imported only to extract.
"""
import sys

if sys.version_info < (3, 9):
    sys.stderr.write("ckpt-supervisor: error: needs Python 3.9 or newer, this is %d.%d (%s)\n"
                     % (sys.version_info[0], sys.version_info[1], sys.executable))
    sys.exit(64)

# The build replaces the next line with the manifest as a Python literal.
_INFO = None  # @MANIFEST@


def _prepare(os, info):
    native = None
    machine = os.uname().machine
    if sys.platform.startswith("linux") and machine in ("x86_64", "AMD64") and _glibc(os):
        for entry in info["native"]:
            low = tuple(entry["python"])
            if (entry["abi3"] and sys.version_info[:2] >= low) or sys.version_info[:2] == low:
                native = entry
                break
    files = dict(info["common"]["files"])
    if native is not None:
        files.update(native["files"])
    name = info["build_id"][:16] + "-" + (native["name"] if native else "pure")
    last_error = None
    for root in _roots(os):
        target = os.path.join(root, name)
        try:
            if not _complete(os, target, files):
                _extract(os, info, root, target, files)
            return target, native is not None
        except OSError as exc:
            last_error = exc
            continue
    sys.stderr.write("ckpt-supervisor: error: cannot extract the single-file supervisor into "
                     "any cache directory (last error: %s); set CKPT_PYZ_CACHE to a writable "
                     "directory\n" % (last_error,))
    sys.exit(64)


def _glibc(os):
    """True with glibc (manylinux wheels need it); cheaper than platform.libc_ver()."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False


def _roots(os):
    env = os.environ
    if env.get("CKPT_PYZ_CACHE"):
        yield env["CKPT_PYZ_CACHE"]
    if env.get("_CONDOR_SCRATCH_DIR"):
        yield os.path.join(env["_CONDOR_SCRATCH_DIR"], ".ckpt-supervisor-pyz")
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    yield os.path.join(base, "ckpt-supervisor")
    import tempfile

    yield os.path.join(tempfile.gettempdir(), "ckpt-supervisor-pyz-%d" % os.getuid())


def _complete(os, target, files):
    try:
        with open(os.path.join(target, ".complete")) as f:
            if f.read().strip() != "ok":
                return False
        for rel, size in files.items():
            if os.stat(os.path.join(target, rel)).st_size != size:
                return False
        return True
    except OSError:
        return False


def _extract(os, info, root, target, files):
    import shutil
    import tempfile
    import zipfile

    members = {}
    for section in [info["common"], *info["native"]]:
        for rel in section["files"]:
            members[rel] = section["prefix"] + rel
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".extract-", dir=root)
    archive = os.path.dirname(os.path.abspath(__file__))
    try:
        with zipfile.ZipFile(archive) as zf:
            for rel in files:
                dest = os.path.join(tmp, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with zf.open(members[rel]) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
        with open(os.path.join(tmp, ".complete"), "w") as f:
            f.write("ok\n")
        if os.path.lexists(target) and not _complete(os, target, files):
            # an old, incomplete or damaged copy: move it aside (another process may use it)
            aside = "%s.broken-%d" % (target, os.getpid())
            try:
                os.rename(target, aside)
                shutil.rmtree(aside, ignore_errors=True)
            except OSError:
                pass
        try:
            os.rename(tmp, target)  # atomic; fails if another start got there first
            tmp = None
        except OSError:
            if not _complete(os, target, files):
                raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _catch_early():
    """``run``: catch signals from the first moment (supervisor.__main__.catch_early takes this
    list over), so that a checkpoint signal during the start cannot kill us."""
    if sys.argv[1:2] != ["run"]:
        return
    import signal

    caught = []
    for sig in range(1, 32):
        if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            continue
        try:
            if signal.getsignal(sig) == signal.SIG_IGN and sig not in (signal.SIGPIPE, signal.SIGXFSZ):
                continue
            signal.signal(sig, lambda signum, frame: caught.append(signum))
        except (OSError, ValueError):
            continue
    sys._ckpt_early_signals = caught


def _main():
    _catch_early()
    import os

    info = _INFO
    if info is None:  # an archive assembled by hand: read the manifest file
        import json
        import zipfile

        with zipfile.ZipFile(os.path.dirname(os.path.abspath(__file__))) as zf:
            info = json.loads(zf.read("_ckpt_pyz.json").decode("utf-8"))
    target, has_native = _prepare(os, info)
    sys.path.insert(0, target)
    if not has_native:
        try:
            import psutil  # noqa: F401  one installed for this Python
        except ImportError:
            import platform

            sys.stderr.write(
                "ckpt-supervisor: error: this single file carries psutil for Linux x86_64 (glibc) "
                "only; this is %s %s; install psutil for %s or run the supervisor from a pip "
                "install\n" % (platform.system(), platform.machine(), sys.executable))
            sys.exit(64)
    # Keep the copy's bytecode even where the job's environment sets PYTHONDONTWRITEBYTECODE
    # (the program still gets that environment): otherwise every start compiles every module
    # again (~100 ms). Only the modules a run imports are compiled, once per copy.
    sys.dont_write_bytecode = False
    from supervisor.__main__ import entrypoint

    entrypoint()


_main()
'''


class BuildError(Exception):
    pass


def _say(text: str) -> None:
    sys.stderr.write(f"build_pyz: {text}\n")


def download(
    wheels: Path, python: str, requirements: Sequence[str], *, platform: str = PLATFORM
) -> None:
    """``pip download`` binary wheels for CPython ``python`` on ``platform`` into ``wheels``."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--quiet",
        "--only-binary=:all:",
        "--no-deps",
        "--platform",
        platform,
        "--python-version",
        python,
        "--implementation",
        "cp",
        "-d",
        str(wheels),
        *requirements,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"download failed: {' '.join(cmd)}\n{proc.stderr.strip()[-2000:]}")


def _wheels(wheels: Path, project: str) -> list[Path]:
    return sorted(wheels.glob(f"{project}-*.whl"))


def _tags(wheel: Path) -> tuple[str, str]:
    """(python tag, abi tag) of a wheel file name."""
    parts = wheel.name[:-4].split("-")
    return parts[-3], parts[-2]


def _version_key(wheel: Path) -> tuple[int, ...]:
    version = wheel.name.split("-")[1]
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def _extract_wheel(wheel: Path, dest: Path, top: str) -> None:
    """Extract the package directory ``top`` (and nothing else) of ``wheel`` into ``dest``."""
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(top + "/") and not name.endswith("/"):
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)


def _file_sizes(base: Path) -> dict[str, int]:
    return {
        str(p.relative_to(base)): p.stat().st_size for p in sorted(base.rglob("*")) if p.is_file()
    }


def _copy_package(dest: Path) -> None:
    src = ROOT / "supervisor"
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts or rel.name == "build_pyz.py":
            continue
        target = dest / "supervisor" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def collect_wheels(wheels: Path, *, offline: bool = False) -> tuple[Path, list[tuple[str, Path]]]:
    """(tenacity wheel, [(variant name, psutil wheel)]); downloads what ``wheels`` lacks."""
    wheels.mkdir(parents=True, exist_ok=True)
    if not offline and (not _wheels(wheels, "tenacity") or not _wheels(wheels, "psutil")):
        _say(f"downloading psutil and tenacity wheels into {wheels}")
        download(wheels, PYTHONS[0], REQUIREMENTS)
    tenacity = _wheels(wheels, "tenacity")
    psutil = _wheels(wheels, "psutil")
    if not tenacity or not psutil:
        raise BuildError(f"no psutil/tenacity wheels in {wheels}")
    abi3 = [w for w in psutil if _tags(w)[1] == "abi3"]
    if abi3:
        best = max(abi3, key=_version_key)
        return max(tenacity, key=_version_key), [("abi3", best)]
    variants = []
    for python in PYTHONS:
        tag = "cp" + python.replace(".", "")
        found = [w for w in psutil if _tags(w)[0] == tag]
        if not found and not offline:
            download(wheels, python, ["psutil>=5.8"])
            found = [w for w in _wheels(wheels, "psutil") if _tags(w)[0] == tag]
        if not found:
            raise BuildError(f"no psutil wheel for CPython {python} in {wheels}")
        variants.append((tag, max(found, key=_version_key)))
    return max(tenacity, key=_version_key), variants


def build(
    output: Path, wheels: Path, *, offline: bool = False, interpreter: str = INTERPRETER
) -> dict[str, Any]:
    """Build the archive; return its manifest."""
    tenacity, variants = collect_wheels(wheels, offline=offline)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "stage"
        common = stage / COMMON
        _copy_package(common)
        _extract_wheel(tenacity, common, "tenacity")
        native_entries = []
        digest = hashlib.sha256(__version__.encode())
        for name, wheel in variants:
            base = stage / NATIVE / name
            _extract_wheel(wheel, base, "psutil")
            python = (3, 6) if name == "abi3" else (int(name[2]), int(name[3:]))
            native_entries.append(
                {
                    "name": f"psutil-{name}",
                    "abi3": name == "abi3",
                    "python": list(python),
                    "wheel": wheel.name,
                    "prefix": f"{NATIVE}/{name}/",
                    "files": _file_sizes(base),
                }
            )
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(stage)).encode() + b"\0" + path.read_bytes())
        manifest = {
            "version": __version__,
            "build_id": digest.hexdigest(),
            "tenacity": tenacity.name,
            "common": {"prefix": f"{COMMON}/", "files": _file_sizes(common)},
            "native": native_entries,
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        marker = "_INFO = None  # @MANIFEST@"
        (stage / "__main__.py").write_text(BOOTSTRAP.replace(marker, f"_INFO = {manifest!r}", 1))
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        zipapp.create_archive(stage, partial, interpreter=interpreter, compressed=True)
        partial.chmod(0o755)
        os.replace(partial, output)
    return manifest


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python3 -m supervisor.build_pyz",
        description="Build the single-file supervisor (a zipapp carrying psutil for "
        "manylinux x86_64 and tenacity).",
    )
    p.add_argument(
        "-o",
        "--output",
        default=str(ROOT / "dist" / "ckpt-supervisor.pyz"),
        help="where to write the archive (default dist/ckpt-supervisor.pyz)",
    )
    p.add_argument(
        "--wheels",
        default=None,
        help="directory to keep the downloaded wheels in (default: a temporary one); wheels "
        "already there are used",
    )
    p.add_argument(
        "--offline", action="store_true", help="use only the wheels in --wheels; no download"
    )
    p.add_argument(
        "--python", default=INTERPRETER, help=f"the #! line's interpreter (default {INTERPRETER})"
    )
    args = p.parse_args(argv)
    if args.offline and not args.wheels:
        p.error("--offline needs --wheels DIR")
    try:
        if args.wheels:
            manifest = build(
                Path(args.output), Path(args.wheels), offline=args.offline, interpreter=args.python
            )
        else:
            with tempfile.TemporaryDirectory() as wheels:
                manifest = build(Path(args.output), Path(wheels), interpreter=args.python)
    except BuildError as exc:
        _say(f"error: {exc}")
        return 1
    size = Path(args.output).stat().st_size
    natives = ", ".join(e["wheel"] for e in manifest["native"])
    _say(f"wrote {args.output} ({size / 1024:.0f} KiB; {natives}; {manifest['tenacity']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

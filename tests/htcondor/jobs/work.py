#!/usr/bin/env python3
"""A test program for the real-pool tier: counts steps, saves its count on a signal or by itself.

It resumes from ``--state`` when that file exists, adds 1 per step, and at the end writes
``--result`` ("steps N sum S") and exits ``--exit-code``. Every start, save and signal is appended
to ``--journal`` (an absolute path in the job's submit directory, outside the sandbox) so that a
test can see what happened in executions whose sandbox HTCondor has removed; the same lines go to
``progress.log`` in the sandbox, which the tests watch to pick the moment of an eviction.

Options (all optional):
  --save-on SIG          on SIG: save the state (taking --save-time seconds, the file written in
                         two halves), print "saved N"; then continue, or exit --exit-on-save
  --every-steps K        save by itself every K steps, then exit --exit-after-save (e.g. 77)
  --pad BYTES            pad the state file to BYTES (a bigger checkpoint: slower commit/upload)
  --hang-at STEP         at STEP, the first time (the --once file does not exist yet): create it,
                         log "hang", and wait until killed
  --hang-in-save         the first signal-save of a resumed run (the --once file does not exist
                         yet) writes the first half, creates --once, logs "hang", waits until killed
  --finish-on-signal C   on --save-on SIG: write the result now and exit C (finished early)
  --on-signal-sleep-exit S:C  on SIGINT: log "saving", sleep S s, write the state, exit C (the
                         issue's program: SIGINT, 7 s, state.txt, 130). Only the job's first save
                         (no "saved" line in --journal yet) takes S s, later ones 1 s: shorter than
                         the pool's checkpoint-signal period, so that the next periodic signal is
                         not already due when the job restarts in place (a signal in the restarted
                         supervisor's interpreter start-up would kill it and hold the job 36/12:
                         docs/howto/checkpoint-signal.md)
  --grandchild FILE      at a fresh start, leave a detached grandchild (its own session) and
                         write its pid to FILE
  --log-signals SIGS     log these signals (comma-separated) and exit 128+N
"""

import argparse
import os
import signal
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=20)
p.add_argument("--step-time", type=float, default=0.2)
p.add_argument("--state", default="state.txt")
p.add_argument("--result", default="result.txt")
p.add_argument("--journal")
p.add_argument("--save-on")
p.add_argument("--save-time", type=float, default=0.0)
p.add_argument("--exit-on-save", type=int)
p.add_argument("--every-steps", type=int)
p.add_argument("--exit-after-save", type=int)
p.add_argument("--pad", type=int, default=0)
p.add_argument("--hang-at", type=int)
p.add_argument("--hang-in-save", action="store_true")
p.add_argument("--once")
p.add_argument("--finish-on-signal", type=int)
p.add_argument("--on-signal-sleep-exit")
p.add_argument("--grandchild")
p.add_argument("--log-signals")
p.add_argument("--exit-code", type=int, default=0)
args = p.parse_args()


def log(text):
    line = f"{text}\n"
    with open("progress.log", "a") as f:
        f.write(line)
    if args.journal:
        with open(args.journal, "a") as f:
            f.write(line)
    print(text, flush=True)


def hang():
    log("hang")
    while True:
        time.sleep(3600)


def state_bytes(n):
    head = f"{n}\n".encode()
    return head + b"." * max(0, args.pad - len(head))


def save(n):
    data = state_bytes(n)
    half = len(data) // 2
    log(f"saving {n}")
    with open(args.state, "wb") as f:
        f.write(data[:half])
        f.flush()
        if args.hang_in_save and resumed and args.once and not os.path.exists(args.once):
            open(args.once, "w").close()
            hang()
        time.sleep(args.save_time)
        f.write(data[half:])
    log(f"saved {n}")


step = 0
try:
    with open(args.state, "rb") as f:
        step = int(f.readline())
except (OSError, ValueError):
    pass
resumed = step > 0
log(f"start {step}")

if args.grandchild and step == 0:
    # sys.executable is '' in a job started as "python3" without PATH: use the running binary
    child = subprocess.Popen([sys.executable or os.readlink("/proc/self/exe"), "-c", "import time; time.sleep(600)"],
                             start_new_session=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(args.grandchild, "w") as f:
        f.write(f"{child.pid}\n")
    log(f"grandchild {child.pid}")

pending = []


def finish():
    with open(args.result, "w") as f:
        f.write(f"steps {step} sum {step * (step + 1) // 2}\n")
    log(f"finished {step}")


if args.save_on:
    sig = getattr(signal, args.save_on)
    signal.signal(sig, lambda s, f: pending.append(s))

if args.on_signal_sleep_exit:
    seconds, code = args.on_signal_sleep_exit.split(":")

    def first_save():
        try:
            with open(args.journal or "progress.log") as f:
                return not any(line.startswith("saved ") for line in f)
        except OSError:
            return True

    def sleep_save_exit(signum, frame):
        slow = first_save()
        log(f"saving {step}")
        time.sleep(float(seconds) if slow else min(1.0, float(seconds)))
        with open(args.state, "wb") as f:
            f.write(state_bytes(step))
        log(f"saved {step}")
        sys.exit(int(code))

    signal.signal(signal.SIGINT, sleep_save_exit)

for name in (args.log_signals or "").split(","):
    if name:
        def logged_exit(signum, frame):
            log(f"signal {signum}")
            sys.exit(128 + signum)

        signal.signal(getattr(signal, name), logged_exit)

while step < args.steps:
    if pending:
        pending.clear()
        if args.finish_on_signal is not None:
            step = args.steps
            finish()
            sys.exit(args.finish_on_signal)
        save(step)
        if args.exit_on_save is not None:
            sys.exit(args.exit_on_save)
    if args.hang_at is not None and step == args.hang_at and args.once and not os.path.exists(args.once):
        open(args.once, "w").close()
        hang()
    time.sleep(args.step_time)
    step += 1
    log(f"running {step}")
    if args.every_steps and step % args.every_steps == 0 and step < args.steps:
        save(step)
        if args.exit_after_save is not None:
            sys.exit(args.exit_after_save)

finish()
sys.exit(args.exit_code)

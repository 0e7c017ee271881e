#!/usr/bin/env python3
"""Breaks each promise of README.md's "## Guarantees" table on purpose and
checks that the test named for it fails.

For every case below: a small, realistic bug (the kind a refactor brings in:
a dropped condition, a wrong constant, an ignored result) is written into
one file, `cargo test --quiet <args>` runs the test the README names for
that promise, and the file gets its original bytes back, whatever happens
(try/finally, also on Ctrl-C and SIGTERM).

A case is
- caught            the test failed with the bug in place (what we want);
- MISSED            the test passed with the bug in place: a test gap;
- did not compile   the bug's text does not build: the case needs mending;
- and, when the case itself cannot be trusted: baseline fails (the test
  fails without the bug too), no test ran (the filter matches nothing),
  timed out, or stale case (its `old` text is not in the file exactly once).

Before the cases, each test target runs once unbroken (the baseline), so
that "caught" means the bug made the difference; `--no-baseline` skips it.

    python3 scripts/break_guarantees.py             # every case
    python3 scripts/break_guarantees.py --list      # the cases
    python3 scripts/break_guarantees.py --only NAME # one case
    python3 scripts/break_guarantees.py --check     # every `old` text is there once (no cargo)

Run from the repository root. Prints a Markdown table (guarantee | break |
test | result) and exits non-zero unless every case was caught. Each cargo
run's output is kept in target/break_guarantees/<case>.log. Standard
library only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "target", "break_guarantees")
BACKUPS = os.path.join(WORK, "backup")
CASE_TIMEOUT_S = 15 * 60

from guarantee_cases import CASES, Case  # noqa: E402  (the script's own folder)


class Interrupted(Exception):
    """SIGTERM or SIGHUP: stop, restore, report."""


def _on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def apply(text: str, edits) -> str:
    """`text` with every edit made; ValueError naming the first `old` that
    does not occur exactly once."""
    for old, new in edits:
        n = text.count(old)
        if n != 1:
            raise ValueError(f"`old` occurs {n} times (expected once): {old.strip()[:80]!r}")
        text = text.replace(old, new, 1)
    return text


def backup_path(c: Case) -> str:
    return os.path.join(BACKUPS, c.name + ".orig")


class Patched:
    """The case's bug written into its file, and the original bytes back on
    exit, whatever happens. If someone else edited the file meanwhile, only
    the case's own edits are undone (their work is kept)."""

    def __init__(self, c: Case):
        self.c = c
        self.path = os.path.join(ROOT, c.path)
        self.original = read_bytes(self.path)
        self.patched = apply(self.original.decode("utf-8"), c.edits).encode("utf-8")

    def __enter__(self):
        os.makedirs(BACKUPS, exist_ok=True)
        write_bytes(backup_path(self.c), self.original)
        write_bytes(self.path, self.patched)
        return self

    def __exit__(self, *exc):
        restore(self.c, self.path, self.original, self.patched)
        return False


def restore(c: Case, path: str, original: bytes, patched: bytes) -> None:
    current = read_bytes(path)
    if current == patched:
        write_bytes(path, original)
    elif current != original:
        # Edited by someone else while the bug was in: undo the bug only.
        text = current.decode("utf-8")
        for old, new in reversed(c.edits):
            if text.count(new) != 1:
                raise SystemExit(
                    f"!! {c.path} changed while case {c.name} ran and its edit cannot be found"
                    f" to undo; the original is in {backup_path(c)}: restore it by hand"
                )
            text = text.replace(new, old, 1)
        write_bytes(path, text.encode("utf-8"))
        print(f"!! {c.path} changed while case {c.name} ran: undid the case's edit only",
              file=sys.stderr)
    if read_bytes(path) == patched:
        raise SystemExit(f"!! {c.path} still holds case {c.name}'s bug; original in {backup_path(c)}")
    try:
        os.remove(backup_path(c))
    except FileNotFoundError:
        pass


def recover_leftovers() -> None:
    """A run killed outright (SIGKILL) leaves its backup behind: put the
    original back if the file still holds exactly that case's bug."""
    if not os.path.isdir(BACKUPS):
        return
    by_name = {c.name: c for c in CASES}
    for entry in sorted(os.listdir(BACKUPS)):
        c = by_name.get(entry[: -len(".orig")]) if entry.endswith(".orig") else None
        if c is None:
            continue
        original = read_bytes(os.path.join(BACKUPS, entry))
        path = os.path.join(ROOT, c.path)
        current = read_bytes(path)
        try:
            patched = apply(original.decode("utf-8"), c.edits).encode("utf-8")
        except ValueError:
            patched = None
        if current == patched:
            write_bytes(path, original)
            print(f"restored {c.path} from an interrupted run's backup", file=sys.stderr)
            os.remove(os.path.join(BACKUPS, entry))
        elif current == original:
            os.remove(os.path.join(BACKUPS, entry))
        else:
            raise SystemExit(
                f"!! leftover backup {os.path.join(BACKUPS, entry)} does not match {c.path};"
                " compare them by hand, then delete the backup"
            )


def run_cargo(args, log, deadline: float):
    """Runs `cargo test --quiet *args` in its own process group; returns
    (returncode or None on timeout, output)."""
    return run_command(["cargo", "test", "--quiet", *args], log, deadline)


def run_check(c: Case, log, deadline: float):
    """Runs the case's test: its command, or `cargo test` with its arguments."""
    if c.command:
        return run_command(list(c.command), log, deadline)
    return run_cargo(list(c.args), log, deadline)


def run_command(command, log, deadline: float):
    """Runs `command` in its own process group; returns (returncode or None
    on timeout, output)."""
    env = dict(os.environ, CARGO_TERM_COLOR="never")
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        code = proc.returncode
    except subprocess.TimeoutExpired:
        stop(proc)
        out, _ = proc.communicate()
        code = None
    except BaseException:
        stop(proc)
        proc.communicate()
        raise
    text = out.decode("utf-8", "replace")
    log.write(text)
    log.write(f"\n[exit {code}]\n")
    log.flush()
    return code, text


def stop(proc: subprocess.Popen) -> None:
    """Ends the process group this script started for `proc` (cargo, the
    test binary and the moto server it started)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


RESULT_LINE = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed")
FAILED_TEST = re.compile(r"^---- (\S+) stdout ----$", re.M)


def tests_ran(output: str) -> int:
    return sum(int(p) + int(f) for p, f in RESULT_LINE.findall(output))


def failed_tests(output: str) -> list:
    return FAILED_TEST.findall(output)


def baseline(cases, logs) -> dict:
    """Runs each target's tests unbroken; returns {case name: problem or None}."""
    problems = {}
    targets = {}
    for c in cases:
        targets.setdefault(c.target, []).append(c)
    for target, group in targets.items():
        filters = sorted({f for c in group for f in c.filters})
        shown = " ".join(group[0].command) if group[0].command else \
            f"cargo test --quiet {' '.join(target)} -- {' '.join(filters)}"
        print(f"baseline: {shown}", file=sys.stderr, flush=True)
        label = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(target)).strip("-")
        with open(os.path.join(logs, "baseline-" + label + ".log"), "w") as log:
            if group[0].command:
                code, out = run_check(group[0], log, time.monotonic() + CASE_TIMEOUT_S)
            else:
                code, out = run_cargo([*target, "--", *filters], log,
                                      time.monotonic() + CASE_TIMEOUT_S)
        failing = failed_tests(out)
        for c in group:
            if code is None:
                problems[c.name] = "baseline timed out"
            elif code != 0 and (not failing or any(f in t for f in c.filters for t in failing)):
                problems[c.name] = "baseline fails" + (f" ({', '.join(failing)})" if failing else "")
            else:
                problems[c.name] = None
    return problems


def run_case(c: Case, logs) -> tuple:
    """(result, detail, seconds)."""
    started = time.monotonic()
    deadline = started + CASE_TIMEOUT_S
    try:
        patch = Patched(c)
    except ValueError as e:
        return "stale case", str(e), 0.0
    with open(os.path.join(logs, c.name + ".log"), "w") as log, patch:
        # A command builds what it needs itself.
        code, out = (0, "") if c.command else run_cargo([*c.target, "--no-run"], log, deadline)
        if code is None:
            result, detail = "timed out", "while building"
        elif code != 0:
            errors = [l for l in out.splitlines() if l.startswith("error")]
            result, detail = "did not compile", "; ".join(errors[:3])
        else:
            code, out = run_check(c, log, deadline)
            ran = 1 if c.command else tests_ran(out)
            if code is None:
                result, detail = "timed out", "while testing"
            elif code != 0:
                failing = failed_tests(out)
                result, detail = "caught", ", ".join(failing) or f"exit {code}"
            elif ran == 0:
                result, detail = "no test ran", "the filter matches no test"
            else:
                result, detail = "MISSED", f"{ran} test(s) passed with the bug in place"
    return result, detail, time.monotonic() - started


def table(rows) -> str:
    lines = ["| guarantee | break | test | result |", "|---|---|---|---|"]
    for c, result, _detail, _seconds in rows:
        where = f"`{c.path}`"
        lines.append(f"| {c.guarantee} | {where}: {c.why} | {c.test} | {result} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", metavar="NAME", action="append",
                        help="run this case only (may be repeated)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--check", action="store_true",
                        help="check every case's `old` text is in its file exactly once (no cargo)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip running the tests unbroken first")
    parser.add_argument("--report", metavar="FILE",
                        help="also write the Markdown table, date and wall time to FILE")
    opts = parser.parse_args()

    if os.path.realpath(os.getcwd()) != os.path.realpath(ROOT):
        print(f"run from the repository root ({ROOT})", file=sys.stderr)
        return 2
    cases = CASES
    if opts.only:
        unknown = set(opts.only) - {c.name for c in CASES}
        if unknown:
            print(f"no such case: {', '.join(sorted(unknown))} (see --list)", file=sys.stderr)
            return 2
        cases = [c for c in CASES if c.name in opts.only]
    if opts.list:
        for c in cases:
            print(f"{c.name:34} {c.path:32} {c.test}\n{'':34} {c.why}")
        return 0
    if opts.check:
        bad = 0
        for c in cases:
            try:
                patched = apply(read_bytes(os.path.join(ROOT, c.path)).decode("utf-8"), c.edits)
                for _old, new in c.edits:
                    if patched.count(new) != 1:
                        raise ValueError(f"`new` occurs {patched.count(new)} times once applied"
                                         " (it must be unique to be undone)")
                print(f"ok     {c.name}")
            except ValueError as e:
                bad += 1
                print(f"STALE  {c.name}: {e}")
        return 1 if bad else 0

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    recover_leftovers()
    os.makedirs(WORK, exist_ok=True)
    began = time.monotonic()
    started_at = datetime.datetime.now().astimezone()
    rows = []
    try:
        problems = {} if opts.no_baseline else baseline(cases, WORK)
        for i, c in enumerate(cases, 1):
            print(f"[{i}/{len(cases)}] {c.name}: {c.path} -> {c.test}",
                  file=sys.stderr, flush=True)
            if problems.get(c.name):
                rows.append((c, problems[c.name], "", 0.0))
            else:
                rows.append((c, *run_case(c, WORK)))
            c_, result, detail, seconds = rows[-1]
            print(f"    {result} in {seconds:.0f} s{': ' + detail if detail else ''}",
                  file=sys.stderr, flush=True)
    except (KeyboardInterrupt, Interrupted) as e:
        print(f"\ninterrupted ({e or 'Ctrl-C'}); every file was restored", file=sys.stderr)
        if not rows:
            return 130
    wall = time.monotonic() - began
    report = table(rows)
    print(report)
    caught = sum(1 for r in rows if r[1] == "caught")
    summary = (f"{caught} of {len(rows)} caught; run {started_at:%Y-%m-%d %H:%M %Z},"
               f" wall time {wall / 60:.1f} min")
    print(f"\n{summary}")
    for c, result, detail, _ in rows:
        if result != "caught":
            print(f"- {c.name}: {result}{': ' + detail if detail else ''}")
    if opts.report:
        with open(opts.report, "w") as f:
            f.write(f"{report}\n\n{summary}\n")
    return 0 if caught == len(rows) and len(rows) == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main())

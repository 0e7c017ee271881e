#!/usr/bin/env python3
"""Sums up `make mutants`: one Markdown row per group from
mutants.out/<group>/mutants.out/outcomes.json (cargo-mutants' own record),
then the mutants each group missed or timed out on.

    python3 scripts/mutants_summary.py [mutants.out]

A run with --iterate counts only the mutants it tested again; the ones
caught before (previously_caught.txt) are added here as caught, and the
ones found unviable before (mutants.out.old/unviable.txt) as unviable, so
that each row covers every mutant of its group. When a file's lines moved
between the two runs, its mutants are named by new line numbers and are
tested again: the old names then count twice (docs/mutants.md took its
"after" figures from `cargo mutants --list` instead, name by name).
Standard library only.
"""

from __future__ import annotations

import datetime
import json
import os
import sys


def lines(path: str) -> list:
    try:
        with open(path) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except FileNotFoundError:
        return []


def seconds(timestamp: str) -> float:
    """Seconds since the epoch of cargo-mutants' RFC 3339 UTC time."""
    whole = datetime.datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S")
    return whole.replace(tzinfo=datetime.timezone.utc).timestamp()


def main() -> int:
    root = sys.argv[1] if len(sys.argv) > 1 else "mutants.out"
    groups = sorted(g for g in os.listdir(root)
                    if os.path.isfile(os.path.join(root, g, "mutants.out", "outcomes.json")))
    if not groups:
        print(f"no results under {root}/<group>/mutants.out/", file=sys.stderr)
        return 1
    print("| group | mutants | caught | missed | timeout | unviable | minutes |")
    print("|---|---|---|---|---|---|---|")
    details = []
    for group in groups:
        out = os.path.join(root, group, "mutants.out")
        with open(os.path.join(out, "outcomes.json")) as f:
            o = json.load(f)
        before = len(lines(os.path.join(out, "previously_caught.txt")))
        # --iterate skips what an earlier run found unviable, too; that run's
        # results are kept beside, in mutants.out.old.
        unviable_before = 0
        if os.path.exists(os.path.join(out, "previously_caught.txt")):
            unviable_before = len(lines(os.path.join(root, group, "mutants.out.old", "unviable.txt")))
        if o.get("end_time"):
            minutes = f"{(seconds(o['end_time']) - seconds(o['start_time'])) / 60:.0f}"
        else:
            minutes = "still running"
        total = o["total_mutants"] + before + unviable_before
        print(f"| {group} | {total} | {o['caught'] + before} | {o['missed']}"
              f" | {o['timeout']} | {o['unviable'] + unviable_before} | {minutes} |")
        for kind in ("missed", "timeout"):
            for name in lines(os.path.join(out, f"{kind}.txt")):
                details.append(f"- {group}, {kind}: `{name}`")
    if details:
        print()
        print("\n".join(details))
    return 0


if __name__ == "__main__":
    sys.exit(main())

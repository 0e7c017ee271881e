#!/usr/bin/env python3
"""The monthly cost of the stack from measured request counts and item sizes
(docs/cost.md prints its output). Every figure below names where it was
measured; the fleet's behaviour (failures per device, batches per minute,
incidents per batch) is an assumption, stated and easy to change.

    python3 scripts/cost_model.py            # the Markdown tables of docs/cost.md
"""

from __future__ import annotations

import math

# -- Prices, us-east-1 list prices as of 2026-12 (on-demand DynamoDB after the
# November 2024 cut), as ../shared/reference/deploy-and-cost-review.md used them.
PRICE_WRU = 0.625 / 1e6  # DynamoDB on-demand, per write request unit
PRICE_RRU = 0.125 / 1e6  # per read request unit
PRICE_METRIC = 0.30  # CloudWatch custom metric, per month
PRICE_SNS_PUBLISH = 0.50 / 1e6
PRICE_LAMBDA_GBS = 0.0000133334  # arm64
PRICE_LAMBDA_REQ = 0.20 / 1e6
MINUTES = 30 * 24 * 60

# -- Measured (debug build against moto; sizes by DynamoDB's item size rule,
# since moto reports no per-index capacity).
# tests/entry_indexes.rs `write_units` (cargo test --test entry_indexes write_units -- --nocapture):
ENTRY_WRU_BEFORE = 8  # RuleNotFound entry: item 2 + three ALL indexes 2 each
ENTRY_WRU_AFTER = 5  # item 2 + three INCLUDE index entries (< 1 KB) 1 each
# tests/incidents.rs `an_incident_fed_by_six_thousand_devices_keeps_its_item_under_four_kilobytes`:
# after: transaction (item < 1 KB: 2) + marker (2) + index entry in place (1),
# and one consistent GetItem read-back (1 RRU), whatever the number of devices.
INCIDENT_WRU_AFTER = 5
INCIDENT_RRU_AFTER = 1
# before: the whole item billed on the table and again on the ALL `watched`
# index whose sort key changed every batch (a delete and a put): about 3 x
# the item's KB (the review's rule), the item being ~1.5 KB plus 12 bytes per
# distinct client (up to 10,000) and 16 per batch fingerprint (500 on average).
def item_kb_before(clients: int) -> float:
    return 1.5 + 0.012 * min(clients, 10_000) + 0.016 * 500


def incident_wru_before(clients: int) -> int:
    return 3 * math.ceil(item_kb_before(clients))


# tests/storm.rs (cargo test --test storm -- --nocapture): one batch of 1,012
# entries naming 1,003 rules: 21 incidents, 21 notifications.
STORM_ENTRIES = 1_012
STORM_INCIDENTS_AFTER = 21
STORM_NOTIFICATIONS_AFTER = 21
STORM_NOTIFICATIONS_BEFORE = 2 * 1_003  # opened and, later, resolved, each
# src/metrics.rs: one dimension set (none): 18 series; before, each name under
# three dimension sets (total, log group, `unknown` for sweeps): 53 series for
# one log group (the review's count).
METRICS_AFTER = 18
METRICS_BEFORE = 53

# -- Assumptions about the fleet (change them to yours).
FLEETS = {
    # devices: (failures per minute, batches per minute, distinct clients of
    # the fleet-wide incident)
    1_000: (5, 6, 1_000),
    10_000: (50, 20, 10_000),
    100_000: (500, 50, 100_000),
}
INCIDENTS_PER_BATCH = 3  # one fleet-wide reason and two small ones (~10 clients)
STORMS_PER_MONTH = 1  # of 100,000 device-chosen rule names in 10 minutes (~100 batches)


def monthly(devices: int) -> dict[str, tuple[float, float]]:
    failures, batches, clients = FLEETS[devices]
    entries = failures * MINUTES
    batch_count = batches * MINUTES
    rows: dict[str, tuple[float, float]] = {}
    rows["Entries stored (WRU)"] = (
        entries * ENTRY_WRU_BEFORE * PRICE_WRU,
        entries * ENTRY_WRU_AFTER * PRICE_WRU,
    )
    before = batch_count * (
        incident_wru_before(clients) + (INCIDENTS_PER_BATCH - 1) * incident_wru_before(10)
    )
    after = batch_count * INCIDENTS_PER_BATCH * INCIDENT_WRU_AFTER
    rows["Incident updates (WRU)"] = (before * PRICE_WRU, after * PRICE_WRU)
    rows["Incident read-backs (RRU)"] = (
        0.0,
        batch_count * INCIDENTS_PER_BATCH * INCIDENT_RRU_AFTER * PRICE_RRU,
    )
    storm_batches = 100
    storm_entries = 100_000
    storm_before = storm_entries * ENTRY_WRU_BEFORE + storm_entries * incident_wru_before(1)
    storm_after = storm_entries * ENTRY_WRU_AFTER + storm_batches * STORM_INCIDENTS_AFTER * (
        INCIDENT_WRU_AFTER + 1
    )
    rows["A rule-name storm (WRU)"] = (
        STORMS_PER_MONTH * storm_before * PRICE_WRU,
        STORMS_PER_MONTH * storm_after * PRICE_WRU,
    )
    rows["Custom metrics (EMF)"] = (METRICS_BEFORE * PRICE_METRIC, METRICS_AFTER * PRICE_METRIC)
    # Lambda: 256 MB, ~60 ms per batch and per sweep (one a minute).
    invocations = batch_count + MINUTES
    lam = invocations * (0.25 * 0.06 * PRICE_LAMBDA_GBS + PRICE_LAMBDA_REQ)
    rows["Lambda (batches and sweeps)"] = (lam, lam)
    return rows


def storm_table() -> str:
    lines = [
        "| one batch of 1,003 device-chosen rule names | before | after |",
        "|---|---:|---:|",
        f"| incidents opened | 1,003 | {STORM_INCIDENTS_AFTER} (20 + 1 overflow) |",
        f"| notifications (opened, then resolved) | {STORM_NOTIFICATIONS_BEFORE:,} | {STORM_NOTIFICATIONS_AFTER} opened (20 + 1 digest), 21 resolved |",
        f"| entries stored | {STORM_ENTRIES:,} | {STORM_ENTRIES:,} |",
    ]
    return "\n".join(lines)


def main() -> None:
    print("| line, per month | " + " | ".join(f"{d:,} devices: before → after" for d in FLEETS) + " |")
    print("|---|" + "---:|" * len(FLEETS))
    totals = {d: [0.0, 0.0] for d in FLEETS}
    names = list(monthly(next(iter(FLEETS))).keys())
    tables = {d: monthly(d) for d in FLEETS}
    for name in names:
        cells = []
        for d in FLEETS:
            b, a = tables[d][name]
            totals[d][0] += b
            totals[d][1] += a
            cells.append(f"${b:,.2f} → ${a:,.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        "| **Total of these lines** | "
        + " | ".join(f"**${totals[d][0]:,.2f} → ${totals[d][1]:,.2f}**" for d in FLEETS)
        + " |"
    )
    print()
    print("| incident update, per batch | " + " | ".join(f"{d:,} devices" for d in FLEETS) + " |")
    print("|---|" + "---:|" * len(FLEETS))
    print(
        "| fleet-wide incident item, before (KB) | "
        + " | ".join(f"{item_kb_before(FLEETS[d][2]):.1f}" for d in FLEETS)
        + " |"
    )
    print(
        "| write units, before → after | "
        + " | ".join(f"{incident_wru_before(FLEETS[d][2])} → {INCIDENT_WRU_AFTER}" for d in FLEETS)
        + " |"
    )
    print()
    print(storm_table())


if __name__ == "__main__":
    main()

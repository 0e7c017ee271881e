"""Small readers for scripts/demo.sh (kept out of the shell for clarity)."""
import json
import sys


def invocation(path):
    """One line from `cargo lambda invoke` output: the function's Summary."""
    summary = json.loads(open(path).read().strip().splitlines()[-1])
    incidents = sum(summary["byCategory"].values())
    print(
        "ok: {entries} entries, {incidents} incidents, {stored} stored, {sent} alerts sent, "
        "{suppressed} suppressed, {seen} already seen".format(
            entries=summary["entries"],
            incidents=incidents,
            stored=summary["stored"],
            sent=summary["alertsSent"],
            suppressed=summary["alertsSuppressed"],
            seen=summary["alertsAlreadySeen"],
        )
    )


def first_trace(path, category):
    """The traceId of the newest incident of a category in `list --output json` output."""
    for line in open(path):
        row = json.loads(line)
        if row.get("category") == category:
            print(row["traceId"])
            return
    sys.exit(f"no {category} incident listed")


def metrics(path):
    """The last EMF record of the function's log, as name = value lines."""
    records = [json.loads(line) for line in open(path) if line.strip()]
    if not records:
        sys.exit("no metrics records in the function's log")
    record = records[-1]
    directive = record["_aws"]["CloudWatchMetrics"][0]
    dimensions = ", ".join(f"{d}={record[d]}" for d in directive["Dimensions"][0])
    print(f"  namespace {directive['Namespace']}, {dimensions}, {len(records)} records")
    for metric in directive["Metrics"]:
        print(f"  {metric['Name']:<24} {record[metric['Name']]:>8} {metric['Unit']}")


if __name__ == "__main__":
    {"invocation": invocation, "first-trace": first_trace, "metrics": metrics}[sys.argv[1]](*sys.argv[2:])

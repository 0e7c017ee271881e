"""Small readers for scripts/demo.sh (kept out of the shell for clarity)."""
import json
import os
import sys


def invocation(path):
    """One line from `cargo lambda invoke` output: the function's Summary."""
    summary = json.loads(open(path).read().strip().splitlines()[-1])
    if summary["messageType"] == "SWEEP":
        print(
            "ok: sweep: {open} open, {resolved} resolved, {sent} notifications sent".format(
                open=summary["incidentsOpen"],
                resolved=summary["incidentsResolved"],
                sent=summary["notificationsSent"],
            )
        )
        return
    print(
        "ok: {entries} entries, {stored} stored, {incidents} incidents "
        "({opened} opened, {counted} already counted), {sent} notifications sent".format(
            entries=summary["entries"],
            stored=summary["stored"],
            incidents=summary["incidents"],
            opened=summary["incidentsOpened"],
            counted=summary["incidentsAlreadyCounted"],
            sent=summary["notificationsSent"],
        )
    )


def all_resolved(path):
    """Exit 0 when a sweep's output says no incident is left open."""
    try:
        summary = json.loads(open(path).read().strip().splitlines()[-1])
    except (ValueError, IndexError):
        sys.exit(1)
    sys.exit(0 if summary.get("messageType") == "SWEEP" and summary["incidentsOpen"] == 0 else 1)


def first_trace(path, category):
    """The traceId of the newest entry of a category in `list --output json` output."""
    for line in open(path):
        row = json.loads(line)
        if row.get("category") == category:
            print(row["traceId"])
            return
    sys.exit(f"no {category} entry listed")


def incident(path, rule):
    """The id of the newest incident of a rule in `incidents --output json` output."""
    for line in open(path):
        row = json.loads(line)
        if row.get("key", {}).get("rule") == rule:
            print(row["incidentId"])
            return
    sys.exit(f"no incident of rule {rule} listed")


def stack(path):
    """What `local_stack.py deploy` deployed: outputs, resources, environment."""
    deployed = json.load(open(path))
    print(f"  stack {deployed['stack']}: {len(deployed['resources'])} resources created")
    for key, value in deployed["outputs"].items():
        print(f"  output {key:<22} {value}")
    print(f"  function {deployed['function_name']}, environment (GetFunctionConfiguration):")
    for key, value in deployed["environment"].items():
        print(f"    {key}={value}")
    unsupported = sorted(f"{k} ({v['type']})" for k, v in deployed["not_created"].items() if not v["condition"])
    if unsupported:
        print("  not created by moto's CloudFormation (unsupported types; AWS creates them):")
        print("    " + ", ".join(unsupported))


def send_failure_record(stack_path, event_path, invoke_out_path, attempts):
    """Puts the invocation record of a failed asynchronous invocation in the
    stack's failure queue, as Lambda's on-failure destination does after the
    retries (the developer guide's format): the event itself under
    requestPayload, the last attempt's error under responsePayload."""
    import re
    import uuid
    from datetime import datetime, timezone

    import boto3

    deployed = json.load(open(stack_path))
    answer = open(invoke_out_path).read()
    # cargo lambda prints the runtime's error as "Error: <errorType>" and
    # "× <errorMessage>".
    error_type = re.search(r"Error: (IotLogMonitor\.[A-Za-z.]+)", answer)
    error_message = re.search(r"× (.*)", answer)
    if not error_type or not error_message:
        sys.exit(f"no error in the invocation's answer: {answer}")
    record = {
        "version": "1.0",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{deployed['function_name']}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": int(attempts),
        },
        "requestPayload": json.load(open(event_path)),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": error_type.group(1), "errorMessage": error_message.group(1).strip()},
    }
    queue = deployed["outputs"]["FailedBatchQueueUrl"]
    sqs = boto3.client("sqs", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))
    print(
        f"  record of the failed invocation ({error_type.group(1)}: {error_message.group(1).strip()}, "
        f"{attempts} attempts) sent to the failure queue"
    )


def metrics(path):
    """The last EMF record of the function's log, as name = value lines."""
    records = [json.loads(line) for line in open(path) if line.strip()]
    if not records:
        sys.exit("no metrics records in the function's log")
    record = records[-1]
    directive = record["_aws"]["CloudWatchMetrics"][0]
    # One dimension set; the empty one (every metric once, in total) says so.
    dimensions = ", ".join(f"{d}={record[d]}" for d in directive["Dimensions"][0]) or "no dimensions"
    print(f"  namespace {directive['Namespace']}, {dimensions}, {len(records)} records")
    for metric in directive["Metrics"]:
        print(f"  {metric['Name']:<24} {record[metric['Name']]:>8} {metric['Unit']}")


if __name__ == "__main__":
    {"invocation": invocation, "all-resolved": all_resolved, "incident": incident, "first-trace": first_trace, "metrics": metrics, "stack": stack,
     "send-failure-record": send_failure_record}[sys.argv[1]](*sys.argv[2:])

"""The plain Python forwarder, as AWS samples and popular forwarders write it:
base64 + gzip + json, then json per message, classified as the processor does."""
import base64
import gzip
import json


def classify(entry):
    event_type = entry.get("eventType")
    if event_type == "RuleNotFound":
        return "RuleNotFound"
    if event_type == "RuleMessageThrottled":
        return "RuleMessageThrottled"
    status = str(entry.get("status", "")).lower()
    level = str(entry.get("logLevel", "")).upper()
    if status == "failure" or level == "ERROR":
        return "Failure"
    if level in ("WARN", "WARNING"):
        return "Warning"
    return None


def handler(event, context=None):
    batch = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    counts = {}
    incidents = []
    for log_event in batch["logEvents"]:
        try:
            entry = json.loads(log_event["message"])
            category = classify(entry) if isinstance(entry, dict) and "eventType" in entry else "Unparseable"
        except ValueError:
            category = "Unparseable"
        if category:
            counts[category] = counts.get(category, 0) + 1
            incidents.append((category, log_event["id"], log_event["message"]))
    return {"entries": len(batch["logEvents"]), "byCategory": counts, "incidents": len(incidents)}

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
import dataclasses
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


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    guarantee: str  # the README row, shortened
    path: str  # relative to the repository root
    edits: tuple  # ((old, new), ...): each `old` must occur exactly once
    args: tuple  # cargo test arguments: a target and a test name filter
    why: str  # the bug, in words

    @property
    def target(self) -> tuple:
        """The cargo arguments that choose the test binary."""
        if self.args[0] == "--lib":
            return ("--lib",)
        assert self.args[0] == "--test", self.args
        return tuple(self.args[:2])

    @property
    def filters(self) -> tuple:
        return tuple(self.args[len(self.target):])

    @property
    def test(self) -> str:
        where = "lib" if self.target == ("--lib",) else f"tests/{self.target[1]}.rs"
        return f"{where}: `{' '.join(self.filters)}`"


def case(name, guarantee, path, old, new, args, why):
    edits = tuple(old) if isinstance(old, list) else ((old, new),)
    return Case(name, guarantee, path, edits, tuple(args), why)


# fmt: off
CASES = [
    # -- At least once in -------------------------------------------------
    case("store-error-ignored",
         "At least once in: a batch that cannot be stored fails, never a success with entries missing",
         "src/pipeline/mod.rs",
         "let stats = self.entries.put_items(items, retry_deadline).await?;",
         "let stats = self.entries.put_items(items, retry_deadline).await.unwrap_or_default();",
         ["--test", "store_and_notify", "nothing_is_announced_when_entries_cannot_be_stored"],
         "a failed store is ignored: the batch succeeds and announces what was never stored"),
    case("unprocessed-items-dropped",
         "At least once in / exactly-once effect: every entry stored",
         "src/aws/entries.rs",
         """                    pending = output
                        .unprocessed_items
                        .and_then(|mut by_table| by_table.remove(&self.table))
                        .unwrap_or_default();
""",
         """                    let _ = output.unprocessed_items;
                    pending = Vec::new();
""",
         ["--test", "store_and_notify", "unprocessed_items_are_written_again_until_stored"],
         "BatchWriteItem's UnprocessedItems are forgotten instead of written again"),
    case("redrive-ignores-s3-payload",
         "At least once in: what failed every retry is redriven",
         "src/tooling/redrive.rs",
         'let payload = match (record.get("requestPayload"), record.get("payload")) {',
         'let payload = match (record.get("requestPayload"), None::<&Value>) {',
         ["--test", "deployed_stack", "a_kinesis_batch_that_failed_every_retry_is_redriven_from_the_bucket"],
         "the `payload` of a Kinesis failure record kept in S3 is ignored: nothing to redrive"),
    case("redrive-ignores-s3-payload-unit",
         "At least once in: what failed every retry is redriven",
         "src/tooling/redrive.rs",
         'let payload = match (record.get("requestPayload"), record.get("payload")) {',
         'let payload = match (record.get("requestPayload"), None::<&Value>) {',
         ["--lib", "a_kinesis_record_kept_in_s3_carries_the_whole_event_as_json_or_as_text"],
         "the same bug, against the unit test beside the parser"),
    # -- Exactly-once effect -------------------------------------------------
    case("redelivery-loses-incident-id",
         "Exactly-once effect: identical items on every delivery, incident id included",
         "src/pipeline/mod.rs",
         """            if let Some(recorded) = recorded {
                for &member in &delta.members {
                    incident_ids[member] = Some(&recorded.incident().incident_id);
""",
         """            if let Some(Recorded::Counted { incident, .. }) = recorded {
                for &member in &delta.members {
                    incident_ids[member] = Some(&incident.incident_id);
""",
         ["--test", "store_and_notify", "a_redelivered_batch_overwrites_and_announces_nothing_again"],
         "a redelivery (AlreadyCounted) rewrites its items without their incident id"),
    # -- One incident per problem --------------------------------------------
    case("incident-key-per-client",
         "One incident per problem across the fleet",
         "src/incident/key.rs",
         "let reason = present(entry.reason.as_deref()).unwrap_or(\"\");\n"
         "                (KeyKind::Operation, event_type, Some(reason))",
         "let reason = present(entry.client_id.as_deref()).unwrap_or(\"\");\n"
         "                (KeyKind::Operation, event_type, Some(reason))",
         ["--lib", "device_failures_are_one_incident_per_event_type_and_reason_whatever_the_client"],
         "device failures keyed by client instead of reason: one incident per device"),
    case("day-key-unbounded",
         "One poisoned key cannot block others (every key written is bounded)",
         "src/store/keys.rs",
         'format!("{}#{day}#{shard}", bounded_key_part(value))',
         'format!("{value}#{day}#{shard}")',
         ["--test", "hostile_input", "one_long_rule_name_blocks_no_other_notification"],
         "GSI day keys (ruleDay, clientDay) take the name whole: a 3,000-byte rule name fails the batch"),
    case("refusal-for-good-too-broad",
         "One poisoned key cannot block others; a refusal every key would meet still fails the batch",
         "src/error.rs",
         'matches!(self, Self::Request { message, retryable: false, .. } if message.starts_with("ValidationException"))',
         "matches!(self, Self::Request { retryable: false, .. })",
         ["--lib", "a_retryable_or_table_wide_refusal_fails_the_batch_and_the_retry_announces_all"],
         "every non-retryable refusal (access denied too) is taken for one key's: the batch succeeds silently"),
    # -- One opened and one resolved notification per incident ---------------
    case("fingerprint-condition-dropped",
         "One opened notification per incident / no double counts: a redelivered batch counts once",
         "src/aws/incidents/write.rs",
         """                values.insert(":fp".into(), s(fingerprint));
                values.insert(":one".into(), n(1));
                let mut condition =
                    "incidentState = :open AND NOT contains(batchFingerprints, :fp)".to_owned();
""",
         """                values.insert(":one".into(), n(1));
                let mut condition = "incidentState = :open".to_owned();
""",
         ["--test", "incidents", "redelivered_batches_count_once_and_announce_once"],
         "the ADD no longer checks the batch fingerprint: a redelivery is counted again"),
    case("resolve-ignores-batch-seq",
         "One resolved notification per incident: resolution conditional on what the sweep read",
         "src/aws/incidents/mod.rs",
         [("\"incidentId = :id AND incidentState = :open AND batchSeq = :seq \\",
           "\"incidentId = :id AND incidentState = :open \\"),
          ("""            .expression_attribute_values(":seq", n(incident.seq))
            .expression_attribute_values(":sent", n(incident.sent))
""",
           """            .expression_attribute_values(":sent", n(incident.sent))
""")],
         None,
         ["--test", "incidents", "a_sweep_acting_on_a_stale_read_resolves_nothing"],
         "`batchSeq = :seq` dropped from the resolve condition: a stale read resolves an active incident"),
    # -- No lost or double counts --------------------------------------------
    case("fingerprints-read-misspelled",
         "No lost or double counts: a lost answer is settled by reading the fingerprint back",
         "src/aws/incidents/write.rs",
         'let fingerprints = item.get("batchFingerprints").and_then(|v| v.as_ss().ok());',
         'let fingerprints = item.get("batchFingerprint").and_then(|v| v.as_ss().ok());',
         ["--test", "faults", "a_count_whose_answer_was_lost_is_not_counted_twice"],
         "the fingerprint set is read under a misspelled name: a count whose answer was lost is never recognised"),
    # -- Claims ----------------------------------------------------------------
    case("unknown-claims-not-released",
         "Claims are given back or taken over, never stuck",
         "src/pipeline/notify.rs",
         """        if let Some(error) = first_error {
            claims.extend(unknown);
            self.settle(""",
         """        if let Some(error) = first_error {
            self.settle(""",
         ["--test", "faults", "a_failed_invocation_gives_back_a_claim_it_may_hold"],
         "a claim whose answer was lost is not released by its token when the invocation fails"),
    case("claim-lease-ignored",
         "Claims are given back or taken over, never stuck",
         "src/aws/incidents/mod.rs",
         [('let free = "(attribute_not_exists(claimToken) OR claimLeaseMs < :now)";',
           'let free = "attribute_not_exists(claimToken)";'),
          ("""            (":step".into(), s(&step)),
            (":now".into(), n(now_ms)),
        ]);""",
           """            (":step".into(), s(&step)),
        ]);""")],
         None,
         ["--test", "faults", "an_unpublished_claim_is_taken_over_once_its_lease_is_over"],
         "a claim is free only when absent: a dead invocation's claim is never taken over"),
    # -- Reminders ---------------------------------------------------------------
    case("reminder-interval-from-opening",
         "Reminders: at most one per interval",
         "src/incident/lifecycle.rs",
         "let last = incident.last_notified_ms.unwrap_or(incident.opened_ms);",
         "let last = incident.opened_ms;",
         ["--test", "incidents", "a_reminder_goes_out_at_most_once_per_interval_and_not_once_acknowledged"],
         "the interval counts from the opening, not the last notification: a reminder every batch after the first interval"),
    case("reminder-despite-ack",
         "Reminders: none once acknowledged",
         "src/incident/lifecycle.rs",
         """let reminder_due = incident.acked_by.is_none()
                && now_ms - last >= timing.repeat_ms""",
         """let reminder_due = now_ms - last >= timing.repeat_ms""",
         ["--lib", "opened_first_then_one_reminder_per_interval_with_new_entries"],
         "the acknowledgement is not checked: an acknowledged incident still gets reminders"),
    case("notification-id-without-step",
         "A repeat of a published notification is recognisable (stable, distinct ids)",
         "src/incident/lifecycle.rs",
         'format!("{incident_id}#{}", transition.name())',
         'format!("{incident_id}#{}", transition.label())',
         ["--lib", "notification_ids_are_stable_per_transition"],
         "every reminder gets the same id (`#reminder`): subscribers drop the second as a repeat"),
    # -- Silences ----------------------------------------------------------------
    case("silence-client-any",
         "A silence holds back only what it matches",
         "src/incident/silence.rs",
         ".is_none_or(|want| !clients.is_empty() && clients.iter().all(|c| *c == want));",
         ".is_none_or(|want| !clients.is_empty() && clients.iter().any(|c| *c == want));",
         ["--lib", "a_client_silence_holds_back_only_what_that_client_alone_causes"],
         "a client silence matches when any client is that one: it hides the failure spreading to others"),
    case("silence-reason-not-matched",
         "A silence holds back only what it matches (matchers ANDed)",
         "src/incident/silence.rs",
         """            && same(&self.event_type, event_type)
            && same(&self.reason, reason)
            && client""",
         """            && same(&self.event_type, event_type)
            && client""",
         ["--lib", "every_matcher_given_must_match_and_none_matches_nothing"],
         "the `reason` matcher is left out of the AND: a silence for one reason mutes every reason of that event type"),
    case("silence-end-not-released",
         "A silence's end lets out what it held, with the count",
         "src/pipeline/sweep.rs",
         """                if transition == Transition::Opened
                    && incident.claim.is_none()
                    && incident.held_back == 0
                {""",
         """                if transition == Transition::Opened && incident.claim.is_none() {""",
         ["--test", "operator_commands", "a_silence_holds_notifications_back_and_its_end_lets_them_out_with_the_count"],
         "the sweep skips every unclaimed opening, held-back ones too: a silence's end never lets them out"),
    # -- Time reserve -----------------------------------------------------------
    case("time-reserve-ignored",
         "Nothing is claimed without time to publish it",
         "src/pipeline/notify.rs",
         "if !reserve.is_zero() && Instant::now() + reserve > deadline {",
         "if !reserve.is_zero() && Instant::now() > deadline {",
         ["--test", "store_and_notify", "without_time_to_notify_safely_the_batch_fails_and_the_retry_notifies"],
         "ALERT_TIME_RESERVE_MS is not added: claims are taken with seconds left"),
    # -- Memory bounded -------------------------------------------------------------
    case("decompression-cap-default",
         "Memory bounded: nothing decompresses past MAX_DECOMPRESSED_BYTES",
         "src/pipeline/mod.rs",
         "let cap = self.config.max_decompressed_bytes;",
         "let cap = crate::ingest::decode::DEFAULT_MAX_DECOMPRESSED_BYTES;",
         ["--lib", "the_configured_decompression_cap_is_the_one_applied"],
         "the configured cap is ignored for the built-in default (32 MiB)"),
    # -- Device-controlled text -------------------------------------------------------
    case("trace-line-unquoted",
         "Device-controlled text cannot forge a notification",
         "src/notify/body.rs",
         'let _ = writeln!(t, "  {}", quoted(trace));',
         'let _ = writeln!(t, "  {trace}");',
         ["--lib", "device_text_cannot_forge_lines_or_fields_of_a_notification"],
         "sample trace ids written into the email text as they came: a trace id can add a line"),
    case("attributes-unescaped",
         "Device-controlled text cannot forge a notification (message attributes escaped)",
         "src/notify/notification/mod.rs",
         "let attribute = |value: &str| truncate_str(&escape(value), MAX_ATTRIBUTE_BYTES).to_owned();",
         "let attribute = |value: &str| truncate_str(value, MAX_ATTRIBUTE_BYTES).to_owned();",
         ["--lib", "device_text_cannot_forge_lines_or_fields_of_a_notification"],
         "message attributes (ruleName, eventType) carry control characters as they came"),
    case("csv-minus-not-guarded",
         "Device-controlled text never drives a terminal or a spreadsheet",
         "src/notify/display.rs",
         "let formula = s.starts_with(['=', '+', '-', '@', '\\t', '\\r']);",
         "let formula = s.starts_with(['=', '+', '@', '\\t', '\\r']);",
         ["--lib", "csv_cells_cannot_become_formulas"],
         "a CSV cell starting with `-` gets no leading `'`: `-2+3` is a formula"),
    case("csv-equals-not-guarded",
         "Device-controlled text never drives a terminal or a spreadsheet",
         "src/notify/display.rs",
         "let formula = s.starts_with(['=', '+', '-', '@', '\\t', '\\r']);",
         "let formula = s.starts_with(['+', '-', '@', '\\t', '\\r']);",
         ["--test", "cli", "device_text_never_drives_the_terminal_or_a_spreadsheet"],
         "a CSV cell starting with `=` gets no leading `'`: `=HYPERLINK(...)` runs in the spreadsheet"),
    # -- Redaction --------------------------------------------------------------------
    case("redaction-case-sensitive",
         "Redaction fails closed (whatever the name's case)",
         "src/store/redact/mod.rs",
         "self.fields.iter().any(|f| f.eq_ignore_ascii_case(name))",
         "self.fields.iter().any(|f| f == name)",
         ["--lib", "redaction_fails_closed_on_whatever_the_entry_parser_accepts"],
         "REDACT_FIELDS names match only in their exact case: `sourceip` leaves `sourceIp` in clear"),
    case("redaction-after-grouping",
         "Redaction fails closed in the table and the notifications (applied before grouping)",
         "src/pipeline/mod.rs",
         [("""        if let Some(redactor) = &self.config.redaction {
            analysis.entries.iter_mut().for_each(|i| redactor.redact(i));
        }
        // Whole payloads can hold device details""",
           """        // Whole payloads can hold device details"""),
          ("""        summary.incidents = deltas.len() as u64;
        let fingerprint = batch_fingerprint(&batch);
""",
           """        summary.incidents = deltas.len() as u64;
        if let Some(redactor) = &self.config.redaction {
            analysis.entries.iter_mut().for_each(|i| redactor.redact(i));
        }
        let fingerprint = batch_fingerprint(&batch);
""")],
         None,
         ["--test", "hostile_input", "redaction_fails_closed_in_the_table_and_the_notifications"],
         "entries are redacted after being grouped into incidents: incidents and notifications keep identifiers"),
    # -- Least privilege --------------------------------------------------------------
    case("role-any-index",
         "The function's role can do nothing beyond its own resources",
         "template.yaml",
         'Resource: !Sub "${IncidentsTable.Arn}/index/watched"',
         'Resource: !Sub "${IncidentsTable.Arn}/index/*"',
         ["--test", "template", "the_function_may_touch_only_the_stacks_own_resources"],
         "the sweep's Query is allowed on every index of the table, not only `watched`"),
    # -- Credentials ----------------------------------------------------------------------
    case("sdk-logs-uncapped",
         "Credentials never in the function's log, at any level",
         "src/lambda.rs",
         "*metadata.level() <= tracing::Level::INFO",
         "*metadata.level() <= tracing::Level::TRACE",
         ["--test", "handler", "payloads_are_logged_at_debug_only_and_credentials_never"],
         "the cap on other crates' events is raised to TRACE: the SDK's request logs reach the function's log"),
]
# fmt: on


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
    command = ["cargo", "test", "--quiet", *args]
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
        print(f"baseline: cargo test --quiet {' '.join(target)} -- {' '.join(filters)}",
              file=sys.stderr, flush=True)
        with open(os.path.join(logs, "baseline-" + "-".join(target).strip("-") + ".log"), "w") as log:
            code, out = run_cargo([*target, "--", *filters], log, time.monotonic() + CASE_TIMEOUT_S)
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
        code, out = run_cargo([*c.target, "--no-run"], log, deadline)
        if code is None:
            result, detail = "timed out", "while building"
        elif code != 0:
            errors = [l for l in out.splitlines() if l.startswith("error")]
            result, detail = "did not compile", "; ".join(errors[:3])
        else:
            code, out = run_cargo(list(c.args), log, deadline)
            ran = tests_ran(out)
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
            print(f"{c.name:34} {c.path:32} cargo test {' '.join(c.args)}\n{'':34} {c.why}")
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
            print(f"[{i}/{len(cases)}] {c.name}: {c.path} -> cargo test {' '.join(c.args)}",
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

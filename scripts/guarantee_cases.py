"""The cases of scripts/break_guarantees.py: for each promise of README.md's
"## Guarantees" table, a small, realistic bug (a dropped condition, a wrong
constant, an ignored result, a misspelled attribute) and the test that must
fail with it in place.

A case's `old` text must occur exactly once in its file (and its `new` text
once after the edit, so that it can be undone): `python3
scripts/break_guarantees.py --check` says which cases went stale.
"""

from __future__ import annotations

import dataclasses

@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    guarantee: str  # the README row, shortened
    path: str  # relative to the repository root
    edits: tuple  # ((old, new), ...): each `old` must occur exactly once
    # cargo test arguments (a target and a test name filter), or
    # ("--command", program, *arguments) for a check that is not a cargo test
    args: tuple
    why: str  # the bug, in words

    @property
    def command(self) -> tuple:
        """The program and arguments of a check that is not a cargo test; () for a cargo test."""
        return tuple(self.args[1:]) if self.args[0] == "--command" else ()

    @property
    def target(self) -> tuple:
        """The cargo arguments that choose the test binary (a command: itself)."""
        if self.command:
            return tuple(self.args)
        if self.args[0] == "--lib":
            return ("--lib",)
        assert self.args[0] == "--test", self.args
        return tuple(self.args[:2])

    @property
    def filters(self) -> tuple:
        return tuple(self.args[len(self.target):])

    @property
    def test(self) -> str:
        if self.command:
            return f"`{' '.join(self.command)}`"
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
    case("redrive-shell-config",
         "A redriven batch is processed as the function would",
         "src/bin/iot-incidents/redrive.rs",
         "    let lookup = |name: &str| env.get(name).cloned();",
         """    let lookup = |name: &str| match name {
        vars::ENTRIES_TABLE | vars::INCIDENTS_TABLE | vars::SILENCES_TABLE | vars::ALERT_TOPIC_ARN => env.get(name).cloned(),
        other => std::env::var(other).ok(),
    };""",
         ["--test", "redrive", "a_redriven_batch_is_stored_as_the_deployed_function_stores_it"],
         "redrive takes the tables and topic from the function but the rest from the operator's shell (the red team's bug): REDACT_FIELDS unset there, the redriven entry keeps the raw clientId"),
    case("redrive-listing-unencoded",
         "A redriven batch is processed as the function would (one odd object does not hold back the others)",
         "src/bin/iot-incidents/redrive.rs",
         "            .encoding_type(EncodingType::Url)\n",
         "            .encoding_type(EncodingType::Url).set_encoding_type(None)\n",
         ["--test", "redrive", "an_odd_object_name_does_not_hold_back_the_rest_of_the_bucket"],
         "the bucket is listed without EncodingType=url: a key with a control character makes the listing unreadable and nothing is redriven"),
    case("redrive-error-type-unescaped",
         "Device-controlled text never drives a terminal (redrive)",
         "src/bin/iot-incidents/redrive.rs",
         'escape(record.error_type.as_deref().unwrap_or("an unknown error"))',
         'record.error_type.as_deref().unwrap_or("an unknown error")',
         ["--test", "redrive", "redrive_shows_what_records_and_keys_say_escaped"],
         "the failed invocation's errorType is printed as the record says: U+202E reaches the terminal"),
    # -- Exactly-once effect -------------------------------------------------
    case("redelivery-loses-incident-id",
         "Exactly-once effect: identical items on every delivery, incident id included",
         "src/pipeline/mod.rs",
         """            if let Some(incident) = recorded.as_ref().and_then(Recorded::incident) {
                for &member in &delta.members {
                    incident_ids[member] = Some(&incident.incident_id);
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
    case("marker-condition-dropped",
         "One opened notification per incident / no double counts: a redelivered batch counts once",
         "src/aws/incidents/write.rs",
         """            .condition_expression("attribute_not_exists(incidentKey)")
            .return_values_on_condition_check_failure""",
         """            .condition_expression("attribute_not_exists(incidentKey) OR attribute_exists(incidentKey)")
            .return_values_on_condition_check_failure""",
         ["--test", "incidents", "redelivered_batches_count_once_and_announce_once"],
         "the batch marker is put whether or not it is there: a redelivery is counted again"),
    case("resolve-ignores-batch-seq",
         "One resolved notification per incident: resolution conditional on what the sweep read",
         "src/aws/incidents/mod.rs",
         [("\"incidentId = :id AND incidentState = :open AND batchSeq = :seq \\",
           "\"incidentId = :id AND incidentState = :open \\"),
          ("""            .expression_attribute_values(":seq", n(incident.seq))
            .expression_attribute_values(":sent", n(incident.sent))
""",
           """            .expression_attribute_values(":sent", n(incident.sent))
"""),
          ("            && current.seq == incident.seq\n",
           "            && current.seq == current.seq\n")],
         None,
         ["--test", "incidents", "a_sweep_acting_on_a_stale_read_resolves_nothing"],
         "`batchSeq = :seq` dropped from the resolve condition: a stale read resolves an active incident"),
    # -- A flapping problem is one incident -------------------------------------
    case("flapping-not-waited-for",
         "A problem that comes back is one incident: reopened, flapping, one opened and one resolved",
         "src/incident/lifecycle.rs",
         "now_ms - self.last_activity_ms >= timing.resolves_after_ms(self.flapping)",
         "now_ms - self.last_activity_ms >= timing.resolves_after_ms(false)",
         ["--test", "incidents", "six_bursts_of_one_reason_are_one_incident_and_at_most_three_notifications"],
         "a flapping incident is resolved after the ordinary quiet period: every later burst opens (and announces) a new incident"),
    case("reopening-stale-count",
         "A problem that comes back is one incident: one reopening per return, however many batches race",
         "src/aws/incidents/write.rs",
         "condition.push_str(known_reopenings(reopen.was, &mut values));",
         'condition.push_str("attribute_exists(incidentId)");',
         ["--test", "incidents", "batches_racing_back_to_a_quiet_incident_reopen_it_once"],
         "a return is written with the reopenings a container last saw: a stale view sets the count back, and flapping is never reached"),
    case("reopening-not-quiet",
         "A problem that comes back is one incident: a return only after a quiet period",
         "src/aws/incidents/write.rs",
         '" AND lastActivityMs <= :quiet AND lastActivityMs > :due AND ",',
         '" AND lastActivityMs > :due AND ",',
         ["--test", "incidents", "a_batch_is_a_return_only_if_the_incident_was_quiet_whatever_a_container_last_saw"],
         "a container that last saw the incident long ago counts a return although another container fed it since"),
    # -- A storm of keys is bounded ---------------------------------------------
    case("storm-budget-ignored",
         "A storm of keys is bounded: at most STORM_BUDGET incidents and openings per batch, one digest",
         "src/pipeline/mod.rs",
         "            self.config.storm_budget,\n        );",
         "            usize::MAX,\n        );",
         ["--test", "storm", "a_storm_of_a_thousand_rule_names_is_one_digest_and_a_bounded_number_of_requests"],
         "the configured budget is not applied: every key of a storm opens its own incident and sends its own notification"),
    case("openings-budget-unconditional",
         "A storm of keys is bounded: at most STORM_BUDGET openings per minute across invocations",
         "src/aws/incidents/openings.rs",
         '"attribute_not_exists(granted) OR contains(granted, :key) OR size(granted) < :budget",',
         '"attribute_not_exists(granted) OR contains(granted, :key) OR size(granted) >= :budget OR size(granted) < :budget",',
         ["--test", "storm", "a_storm_spread_over_batches_opens_at_most_the_budget_per_minute"],
         "the minute's counter is counted but never checked: a storm spread over batches opens an incident (and a notification) per key"),
    case("storm-split-by-arrival",
         "A storm of keys is bounded: a redelivered batch splits the same way",
         "src/incident/delta.rs",
         "keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));",
         "keys.sort_by(|a, b| b.1.cmp(&a.1));",
         ["--lib", "the_split_depends_on_the_batch_alone_and_each_category_gets_its_turn"],
         "ties among equally busy keys are left in hash order: the same batch delivered again may keep other keys, and count an entry by one incident once and by another the next time"),
    case("digest-name-unquoted",
         "A storm of keys is bounded (its digest shows device text as every notification does)",
         "src/pipeline/digest.rs",
         '.map(|(name, value)| format!("{name} {}", quoted(value)))',
         '.map(|(name, value)| format!("{name} \\"{value}\\""))',
         ["--lib", "device_names_in_a_digest_stay_inside_their_quotes_and_code_spans"],
         "the digest's email puts a folded key's name between quotes as it came: a name with a line break forges a line of the notification"),
    case("deadline-not-kept",
         "A storm of keys is bounded: the invocation ends by its deadline",
         "src/pipeline/mod.rs",
         "tokio::time::timeout_at(deadline.into(), work)",
         "tokio::time::timeout_at((deadline + Duration::from_secs(3600)).into(), work)",
         ["--lib", "the_invocation_never_runs_past_its_deadline_and_the_retry_announces"],
         "the invocation is not stopped at its deadline: a hanging publish runs past it (and Lambda's own)"),
    case("publish-unbounded",
         "A storm of keys is bounded: publish concurrency bounded like the incident store's",
         "src/aws/sns.rs",
         ".buffer_unordered(PUBLISH_CONCURRENCY)",
         ".buffer_unordered(usize::MAX)",
         ["--lib", "publishing_keeps_at_most_the_bound_in_flight"],
         "every PublishBatch of a storm at once (the measured 100 at a time)"),
    # -- No lost or double counts --------------------------------------------
    case("marker-read-misspelled",
         "No lost or double counts: a lost answer is settled by the batch's marker",
         "src/aws/incidents/write.rs",
         'if code(0) == "ConditionalCheckFailed" {',
         'if code(0) == "ConditionalCheckFail" {',
         ["--test", "faults", "a_count_added_to_an_open_incident_whose_answer_was_lost_is_not_counted_twice"],
         "the marker's refusal is read under a misspelled code: a count whose answer was lost is never recognised"),
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
          ("""        }
        let fingerprint = batch_fingerprint(&batch);
""",
           """        }
        if let Some(redactor) = &self.config.redaction {
            analysis.entries.iter_mut().for_each(|i| redactor.redact(i));
        }
        let fingerprint = batch_fingerprint(&batch);
""")],
         None,
         ["--test", "hostile_input", "redaction_fails_closed_in_the_table_and_the_notifications"],
         "entries are redacted after being grouped into incidents: incidents and notifications keep identifiers"),
    # -- The operator's commands ------------------------------------------------
    case("ack-written-misspelled",
         "The operator's commands work on what the pipeline wrote: `ack`",
         "src/aws/incident_reader.rs",
         [('"SET ackedBy = :by, ackedMs = :at, ackNote = :note"',
           '"SET ackBy = :by, ackedMs = :at, ackNote = :note"'),
          ('"SET ackedBy = :by, ackedMs = :at REMOVE ackNote"',
           '"SET ackBy = :by, ackedMs = :at REMOVE ackNote"')],
         None,
         ["--test", "operator_commands", "incidents_show_and_ack_work_on_what_the_pipeline_wrote"],
         "`ack` writes the acknowledgement under a name the pipeline and `show` do not read: reminders go on"),
    case("silence-without-matcher",
         "No silence mutes by accident",
         "src/bin/iot-incidents/silence.rs",
         'ArgGroup::new("matcher").required(true)',
         'ArgGroup::new("matcher").required(false)',
         ["--test", "operator_commands", "silences_refuse_what_would_mute_by_accident"],
         "a silence with no matcher is accepted: it matches nothing today, or everything after a refactor"),
    case("silence-thirty-days-refused",
         "No silence mutes by accident (at most 30 days, and 30 days allowed)",
         "src/bin/iot-incidents/silence.rs",
         "if d.as_millis() > MAX_SILENCE_MS as u128 {",
         "if d.as_millis() >= MAX_SILENCE_MS as u128 {",
         ["--test", "operator_commands", "silences_refuse_what_would_mute_by_accident"],
         "the bound is off by one: a silence of exactly 30 days, the documented maximum, is refused"),
    case("silences-read-unbounded",
         "A long silence history never switches silences off",
         "src/aws/silences.rs",
         "self.query(Some(now_ms), true).await",
         "self.query(None, true).await",
         ["--test", "silences", "a_long_silence_history_is_never_read_and_the_silence_in_force_still_holds"],
         "the read of the silences in force drops its bound: every silence kept (ended ones too) is read on every read"),
    case("silence-read-error-uncounted",
         "Silences being ignored is seen (SilenceReadErrors)",
         "src/pipeline/notify.rs",
         "summary.silence_read_errors += 1;",
         "// summary.silence_read_errors += 1; (only logged)",
         ["--test", "silences", "silences_that_cannot_be_read_are_ignored_and_counted_in_the_metric"],
         "a failed read of the silences is only logged: no metric, so the alarm never fires"),
    case("kinesis-arrival-time-read",
         "A Kinesis record is never refused for a field the pipeline does not read",
         "src/ingest/decode.rs",
         """    pub data: Base64Data,
    #[serde(default)]
    pub sequence_number: String,""",
         """    pub data: Base64Data,
    pub approximate_arrival_timestamp: aws_lambda_events::encodings::SecondTimestamp,
    #[serde(default)]
    pub sequence_number: String,""",
         ["--test", "scale_out", "a_record_whose_arrival_time_is_finer_than_a_millisecond_is_processed"],
         "the record reads its arrival time as aws_lambda_events does (milliseconds): .999999 refuses the record"),
    case("trace-keeps-other-messages",
         "`trace` shows one message: lines kept only where their own traceId matches",
         "src/bin/iot-incidents/trace.rs",
         'if line.get("traceId").and_then(Value::as_str) != Some(trace_id) {',
         'if line.get("traceId").is_none() {',
         ["--test", "operator_commands", "trace_shows_one_message_from_publish_to_where_it_stopped"],
         "every line the filter pattern's text match returns is kept: another message's line that mentions the id joins the trace"),
    # -- What a notification says ------------------------------------------------------
    case("hint-row-misspelled",
         "Every notification says what it means and what to check",
         "src/notify/hints/rules.rs",
         '&["Sqs"],',
         '&["SqsQueue"],',
         ["--lib", "every_documented_event_type_and_reason_has_its_own_hint"],
         "the SQS action's row is keyed by a name the logs never use: SQS failures get the generic hint"),
    case("chat-thread-per-notification",
         "Chat gets Amazon Q Developer's custom notification format, one thread per incident",
         "src/notify/chat.rs",
         "thread_id: b.incident_id.to_string(),",
         "thread_id: b.notification_id.to_string(),",
         ["--lib", "chat_gets_an_amazon_q_custom_notification_threaded_by_incident"],
         "each notification starts its own chat thread: an incident's opening, reminders and resolution are scattered"),
    case("chat-command-escaped-twice",
         "A command shown in a notification runs only what it says",
         "src/notify/chat.rs",
         "        match command_span(span) {",
         "        match Some(chat_code(span)) {",
         ["--lib", "a_command_shown_in_a_notification_runs_only_what_it_says"],
         "the chat copy escapes the shell-quoted command again (the red team's bug): a name's quotes no longer close where the shell expects"),
    case("verdict-small-capitals-unfolded",
         "Device-controlled text cannot forge a notification",
         "src/notify/body.rs",
         "    unicode_security::confusable_detection::skeleton(small_capital.encode_utf8(&mut one))",
         "    unicode_security::confusable_detection::skeleton(c.encode_utf8(&mut one))",
         ["--lib", "a_hostile_name_cannot_add_a_link_or_formatting_in_chat"],
         "small capitals are not folded: a rule named ʀᴇsᴏʟᴠᴇᴅ reads as a verdict in an OPEN chat title"),
    case("chat-metadata-plain-text",
         "Device-controlled text cannot forge a notification",
         "src/notify/chat.rs",
         '        format!("{name}: {}", code(&without_verdict(value), room.max(3)))',
         '        format!("{name}: {}", text(value, room.max(3)))',
         ["--lib", "a_hostile_name_cannot_add_a_link_or_formatting_in_chat"],
         "chat metadata carries device text outside code spans: a bare URL or @here links and mentions"),
    case("shell-word-escaped-then-quoted",
         "A command shown in a notification runs only what it says",
         "src/notify/display.rs",
         "    if !s.chars().any(shell_escaped_char) {",
         "    if !s.contains('\\'') {",
         ["--lib", "a_command_shown_in_a_notification_runs_only_what_it_says"],
         "names with a backslash, `!`, a backquote or a control character are single-quoted as they are: one line no more, chat and bash's history expansion read them"),
    # -- The sweep -----------------------------------------------------------------------
    case("sweep-every-five-minutes",
         "The sweep runs every minute",
         "template.yaml",
         "Schedule: rate(1 minute)",
         "Schedule: rate(5 minutes)",
         ["--test", "template", "a_schedule_invokes_the_function_and_the_sweep_queries_an_index"],
         "the sweep is scheduled every 5 minutes: resolutions and reminders come up to 4 minutes late"),
    # -- Bad input ----------------------------------------------------------------------
    case("scan-depth-unbounded",
         "Bad input is a clear error or an `Unparseable` entry, never a panic",
         "src/model/essentials.rs",
         "opening @ (b'{' | b'[') if depth < MAX_DEPTH => {",
         "opening @ (b'{' | b'[') => {",
         ["--test", "bad_input", "deep_nesting_and_huge_strings_are_handled"],
         "the escaped scan follows nesting without a bound: its 32-bit set of open containers overflows on deep input"),
    # -- The stored item ------------------------------------------------------------------
    case("item-markers-from-entry",
         "The stored item agrees with the classification: the table's own markers never come from the entry",
         "src/store/item.rs",
         "if name.is_empty() || OWN_ATTRIBUTES.contains(&name) {",
         "if name.is_empty() {",
         ["--test", "hostile_input", "a_repeated_key_cannot_make_the_item_disagree_with_the_notification"],
         "an entry's own `originalSize` or `droppedFields` is stored as the table's marker: a device forges 'trimmed'"),
    # -- Pseudonyms -------------------------------------------------------------------------
    case("pseudonym-unkeyed",
         "Device identifiers can be kept out: keyed pseudonyms",
         "src/store/redact/mod.rs",
         "mac: Hmac::new_from_slice(key).expect(",
         "mac: Hmac::new_from_slice(&key[..0]).expect(",
         ["--lib", "pseudonyms_are_stable_keyed_and_short"],
         "the key is ignored: a pseudonym is a plain hash anyone can recompute from a fleet's client ids"),
    # -- Dependencies ----------------------------------------------------------------------
    case("license-not-allowed",
         "Dependencies: allowed licenses only",
         "Cargo.toml",
         'license = "Apache-2.0"',
         'license = "GPL-3.0-only"',
         ["--command", ".venv/cargo/bin/cargo-deny", "--offline", "check", "licenses"],
         "a crate of the graph (here the project's own) under a license not on deny.toml's list"),
    # -- Deleting or updating the stack loses nothing ----------------------------------
    case("iot-logging-not-retained",
         "Deleting or updating the stack keeps what holds data, and AWS IoT logging on",
         "template.yaml",
         """  IotLogging:
    Type: AWS::IoT::Logging
    DeletionPolicy: Retain
""",
         """  IotLogging:
    Type: AWS::IoT::Logging
""",
         ["--test", "template", "what_holds_data_is_retained_pinned_and_changed_only_with_a_migration_note"],
         "AWS::IoT::Logging without Retain: deleting the stack calls SetV2LoggingOptions(disableAllLogs) for the whole account"),
    case("table-schema-unpinned",
         "Deleting or updating the stack keeps what holds data (no silent replacement)",
         "template.yaml",
         "- { AttributeName: silenceId, KeyType: HASH }",
         "- { AttributeName: silenceKey, KeyType: HASH }",
         ["--test", "template", "what_holds_data_is_retained_pinned_and_changed_only_with_a_migration_note"],
         "the silences table's key schema changes: an update replaces the table and every silence is orphaned"),
    # -- Least privilege --------------------------------------------------------------
    case("role-any-index",
         "The function's role can do nothing beyond its own resources",
         "template.yaml",
         '- !Sub "${IncidentsTable.Arn}/index/sweep"',
         '- !Sub "${IncidentsTable.Arn}/index/*"',
         ["--test", "template", "the_function_may_touch_only_the_stacks_own_resources"],
         "the sweep's Query is allowed on every index of the table, not only `sweep` and `watched`"),
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

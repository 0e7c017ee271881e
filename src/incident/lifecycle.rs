//! An incident's life: opened by its first entry, reminded at most once per
//! repeat interval while entries keep coming, *quiet* once no entry came for
//! the resolve delay, resolved when it stayed quiet through the reopen
//! window too. An entry while it is quiet *reopens* it (the same id: it was
//! never announced resolved); after `flap_reopenings` reopenings it is
//! *flapping*, and is resolved only after the longer flapping quiet period.
//! An entry after the resolution opens a new incident with a new id. What is
//! due is decided here, from the stored state and the clock; the store makes
//! each decision race-free with conditional writes.

use crate::incident::delta::Delta;
use crate::incident::key::IncidentKey;
use crate::model::time::format_rfc3339;
use crate::store::keys::truncate_str;

/// What an incident keeps of its log group's name.
pub const MAX_LOG_GROUP_BYTES: usize = 512;

/// Open, or resolved (for good: a later entry opens a new incident).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// A notification-worthy change of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    /// The n-th reminder (1, 2, …).
    Reminder(u32),
    Resolved,
}

impl Transition {
    pub fn label(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Reminder(_) => "reminder",
            Self::Resolved => "resolved",
        }
    }

    /// How many notifications of the incident went out before this one
    /// (the resolved one is counted apart).
    pub fn step(self) -> u32 {
        match self {
            Self::Opened => 0,
            Self::Reminder(n) => n,
            Self::Resolved => u32::MAX,
        }
    }

    /// What the claim on the incident records: `opened`, `reminder-2`, `resolved`.
    pub fn name(self) -> String {
        match self {
            Self::Reminder(n) => format!("reminder-{n}"),
            other => other.label().to_owned(),
        }
    }
}

/// The same for every delivery of one transition's notification (a retry
/// of the publish, SNS's own redelivery): subscribers drop repeats by it.
pub fn notification_id(incident_id: &str, transition: Transition) -> String {
    format!("{incident_id}#{}", transition.name())
}

/// An incident's id: its key's hash and its generation (the n-th incident of that key).
pub fn incident_id(key_hash: &str, generation: u64) -> String {
    format!("{key_hash}-{generation}")
}

/// A claim on an incident's next notification, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClaim {
    pub token: String,
    pub lease_until_ms: i64,
    pub step: String,
}

/// An incident as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentState {
    /// The item's key: the incident key's hash while it is the key's current
    /// incident, the incident id for the record of a resolved one.
    pub item_key: String,
    pub incident_id: String,
    pub generation: u64,
    pub state: State,
    pub key: IncidentKey,
    pub log_group: String,
    pub opened_ms: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// When a batch last added to it (processing time): the quiet period runs from it.
    pub last_activity_ms: i64,
    pub resolved_ms: Option<i64>,
    pub entries: u64,
    /// Changes with every batch counted: a sweep resolves only what it read.
    pub seq: u64,
    /// Distinct clients: exact while at most `clients::EXACT_CLIENTS`, then
    /// the sketch's estimate (`clients_estimated`, about 9 % standard error).
    pub distinct_clients: u64,
    pub clients_estimated: bool,
    pub top_clients: Vec<String>,
    pub sample_trace_ids: Vec<String>,
    pub details: Option<String>,
    pub account_id: Option<String>,
    /// Notifications sent for it, resolved aside (1 = opened, 2 = first reminder …).
    pub sent: u32,
    pub last_notified_ms: Option<i64>,
    /// Its entry count when the last notification went out.
    pub notified_entries: u64,
    pub resolved_sent: bool,
    pub claim: Option<StoredClaim>,
    pub acked_by: Option<String>,
    /// The acknowledgement's note, if any.
    pub ack_note: Option<String>,
    /// Notifications held back by silences while it was open.
    pub held_back: u64,
    /// Times it came back while quiet (see [`IncidentState::returns_at`]).
    pub reopenings: u32,
    /// Marked when its reopenings reached `Timing::flap_reopenings`: it is
    /// resolved only after `Timing::flap_resolve_after_ms` of quiet.
    pub flapping: bool,
    /// What went out, in order: `<transition> <RFC 3339 time>`; of the
    /// reminders only the last (its number says how many), so it stays
    /// bounded however long the incident lasts (see [`IncidentState::remember`]).
    pub history: Vec<String>,
}

/// The clock's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// No entry for this long: the incident is quiet (an entry now reopens it).
    pub resolve_after_ms: i64,
    /// Quiet for this much longer: resolved (and announced so).
    pub reopen_window_ms: i64,
    /// Reopenings that mark an incident flapping.
    pub flap_reopenings: u32,
    /// The quiet period after which a flapping incident is resolved (at
    /// least `resolve_after_ms + reopen_window_ms`).
    pub flap_resolve_after_ms: i64,
    pub repeat_ms: i64,
}

/// What a batch is to an open incident, by the clock: it adds to an active
/// one, comes back to a quiet one (one more reopening, flapping from
/// `Timing::flap_reopenings` on), or comes late to one past its whole quiet
/// period that the sweep has not yet resolved (no reopening counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Active,
    Return { reopenings: u32, flapping: bool },
    Late,
}

impl Timing {
    /// What a batch at `now_ms` is to an open incident last active at
    /// `last_activity_ms`, with `reopenings` so far (`flapping` or not).
    /// One rule for the store's write and the in-memory model.
    pub fn arrival(
        &self,
        last_activity_ms: i64,
        reopenings: u32,
        flapping: bool,
        now_ms: i64,
    ) -> Arrival {
        let quiet_for = now_ms - last_activity_ms;
        if quiet_for >= self.resolves_after_ms(flapping) {
            Arrival::Late
        } else if quiet_for >= self.resolve_after_ms {
            let reopenings = reopenings.saturating_add(1);
            Arrival::Return {
                reopenings,
                flapping: flapping || reopenings >= self.flap_reopenings,
            }
        } else {
            Arrival::Active
        }
    }

    /// The quiet period after which `incident` is resolved.
    pub fn resolves_after_ms(&self, flapping: bool) -> i64 {
        if flapping {
            self.flap_resolve_after_ms
        } else {
            self.resolve_after_ms + self.reopen_window_ms
        }
    }
}

impl IncidentState {
    /// The incident a batch's delta opens as generation `generation` of its
    /// key, at `now_ms`: what a store writes when it opens one.
    pub fn opened(delta: &Delta, log_group: &str, generation: u64, now_ms: i64) -> Self {
        let item_key = delta.key.hash();
        let clients = delta.clients.count();
        Self {
            incident_id: incident_id(&item_key, generation),
            item_key,
            generation,
            state: State::Open,
            key: delta.key.clone(),
            log_group: truncate_str(log_group, MAX_LOG_GROUP_BYTES).to_owned(),
            opened_ms: now_ms,
            first_seen_ms: delta.first_ms,
            last_seen_ms: delta.last_ms,
            last_activity_ms: now_ms,
            resolved_ms: None,
            entries: delta.entries,
            seq: 1,
            distinct_clients: clients.distinct,
            clients_estimated: clients.estimated,
            top_clients: delta.top_clients.iter().map(|(c, _)| c.clone()).collect(),
            sample_trace_ids: delta.sample_trace_ids.clone(),
            details: delta.details.clone(),
            account_id: delta.account_id.clone(),
            sent: 0,
            last_notified_ms: None,
            notified_entries: 0,
            resolved_sent: false,
            claim: None,
            acked_by: None,
            ack_note: None,
            held_back: 0,
            reopenings: 0,
            flapping: false,
            history: Vec::new(),
        }
    }

    /// Notes a notification that went out, keeping the history bounded:
    /// `opened`, the last reminder only (`reminder-N`: N of them went out),
    /// `resolved`. What a store keeps, and how the DynamoDB store keeps it
    /// (`history` and `lastReminder`).
    pub fn remember(&mut self, transition: Transition, at_ms: i64) {
        let line = format!("{} {}", transition.name(), format_rfc3339(at_ms));
        if let Transition::Reminder(_) = transition {
            self.history.retain(|h| !h.starts_with("reminder-"));
            let at = self
                .history
                .iter()
                .position(|h| h.starts_with("resolved "))
                .unwrap_or(self.history.len());
            self.history.insert(at, line);
        } else {
            self.history.push(line);
        }
    }

    /// What the sweep's index holds of it: what the sweep decides on (quiet,
    /// due, claimed, silenced; not whether it flaps, which the store's
    /// resolution reads from the whole item), the rest empty. Whatever renders or records
    /// an incident reads its item (a claim's answer is the whole item).
    /// The DynamoDB store's projection (`aws::incident_item::WATCHED_PROJECTION`)
    /// and the in-memory store's `watched` both give exactly this.
    pub fn as_watched(&self) -> Self {
        Self {
            generation: 0,
            log_group: String::new(),
            first_seen_ms: 0,
            last_seen_ms: 0,
            resolved_ms: None,
            distinct_clients: 0,
            clients_estimated: false,
            sample_trace_ids: Vec::new(),
            details: None,
            account_id: None,
            ack_note: None,
            reopenings: 0,
            flapping: false,
            history: Vec::new(),
            ..self.clone()
        }
    }

    /// Whether another invocation holds the right to its next notification.
    pub fn claim_is_live(&self, now_ms: i64) -> bool {
        self.claim
            .as_ref()
            .is_some_and(|c| c.lease_until_ms >= now_ms)
    }

    /// No batch added to it for the resolve delay: a batch now is a return
    /// (it reopens the incident, see [`IncidentState::returns_at`]).
    pub fn is_quiet(&self, now_ms: i64, timing: Timing) -> bool {
        self.state == State::Open && now_ms - self.last_activity_ms >= timing.resolve_after_ms
    }

    /// Quiet through the reopen window too (through the flapping quiet
    /// period, if it is flapping): due to be resolved, and announced so.
    pub fn is_due_to_resolve(&self, now_ms: i64, timing: Timing) -> bool {
        self.state == State::Open
            && now_ms - self.last_activity_ms >= timing.resolves_after_ms(self.flapping)
    }

    /// What a batch at `now_ms` makes of its reopenings: `Some((reopenings,
    /// flapping))` if the batch is a return (the incident was quiet, and not
    /// yet past its whole quiet period), `None` if it merely adds to it. A batch after the resolution is not a
    /// return: it opens the next incident.
    pub fn returns_at(&self, now_ms: i64, timing: Timing) -> Option<(u32, bool)> {
        if self.state != State::Open {
            return None;
        }
        match timing.arrival(
            self.last_activity_ms,
            self.reopenings,
            self.flapping,
            now_ms,
        ) {
            Arrival::Return {
                reopenings,
                flapping,
            } => Some((reopenings, flapping)),
            Arrival::Active | Arrival::Late => None,
        }
    }

    /// Entries since the last notification (all of them before the first).
    pub fn entries_since_notified(&self) -> u64 {
        self.entries.saturating_sub(self.notified_entries)
    }
}

/// The notification due for `incident` at `now_ms`, if any. Nothing is due
/// while someone else's claim is live. A resolved incident is announced only
/// if its opening was: a resolved notification for an incident nobody was
/// told about would be noise.
pub fn notification_due(
    incident: &IncidentState,
    now_ms: i64,
    timing: Timing,
) -> Option<Transition> {
    if incident.claim_is_live(now_ms) {
        return None;
    }
    match incident.state {
        State::Resolved => {
            (incident.sent > 0 && !incident.resolved_sent).then_some(Transition::Resolved)
        }
        State::Open if incident.sent == 0 => Some(Transition::Opened),
        State::Open => {
            let last = incident.last_notified_ms.unwrap_or(incident.opened_ms);
            let reminder_due = incident.acked_by.is_none()
                && now_ms - last >= timing.repeat_ms
                && incident.entries_since_notified() > 0;
            reminder_due.then_some(Transition::Reminder(incident.sent))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::incident::key::KeyKind;
    use crate::model::category::Category;

    pub fn open_incident() -> IncidentState {
        IncidentState {
            item_key: "k".into(),
            incident_id: incident_id("k", 1),
            generation: 1,
            state: State::Open,
            key: IncidentKey {
                category: Category::RuleNotFound,
                kind: KeyKind::Rule,
                first: "r".into(),
                second: None,
            },
            log_group: "g".into(),
            opened_ms: 0,
            first_seen_ms: 0,
            last_seen_ms: 0,
            last_activity_ms: 0,
            resolved_ms: None,
            entries: 10,
            seq: 1,
            distinct_clients: 1,
            clients_estimated: false,
            top_clients: vec![],
            sample_trace_ids: vec![],
            details: None,
            account_id: None,
            sent: 0,
            last_notified_ms: None,
            notified_entries: 0,
            resolved_sent: false,
            claim: None,
            acked_by: None,
            ack_note: None,
            held_back: 0,
            reopenings: 0,
            flapping: false,
            history: vec![],
        }
    }

    pub const TIMING: Timing = Timing {
        resolve_after_ms: 900_000,
        reopen_window_ms: 900_000,
        flap_reopenings: 2,
        flap_resolve_after_ms: 3_600_000,
        repeat_ms: 4 * 3_600_000,
    };

    #[test]
    fn opened_first_then_one_reminder_per_interval_with_new_entries() {
        let mut i = open_incident();
        assert_eq!(notification_due(&i, 1, TIMING), Some(Transition::Opened));
        i.sent = 1;
        i.last_notified_ms = Some(1_000);
        i.notified_entries = 10;
        i.entries = 50;
        assert_eq!(
            notification_due(&i, 1_000 + TIMING.repeat_ms - 1, TIMING),
            None
        );
        let due = 1_000 + TIMING.repeat_ms;
        assert_eq!(
            notification_due(&i, due, TIMING),
            Some(Transition::Reminder(1))
        );
        i.notified_entries = 50;
        assert_eq!(
            notification_due(&i, due, TIMING),
            None,
            "nothing new to tell"
        );
        i.entries = 51;
        i.acked_by = Some("ana".into());
        assert_eq!(
            notification_due(&i, due, TIMING),
            None,
            "acknowledged: no reminders"
        );
    }

    #[test]
    fn a_live_claim_holds_everything_back_until_its_lease_ends() {
        let mut i = open_incident();
        i.claim = Some(StoredClaim {
            token: "t".into(),
            lease_until_ms: 500,
            step: "opened".into(),
        });
        assert_eq!(notification_due(&i, 500, TIMING), None);
        assert_eq!(notification_due(&i, 501, TIMING), Some(Transition::Opened));
    }

    #[test]
    fn resolved_is_announced_once_and_only_if_opened_was() {
        let mut i = open_incident();
        i.state = State::Resolved;
        assert_eq!(notification_due(&i, 1, TIMING), None, "never announced");
        i.sent = 1;
        assert_eq!(notification_due(&i, 1, TIMING), Some(Transition::Resolved));
        i.resolved_sent = true;
        assert_eq!(notification_due(&i, 1, TIMING), None);
    }

    #[test]
    fn quiet_means_no_batch_for_the_whole_period() {
        let mut i = open_incident();
        i.last_activity_ms = 1_000;
        assert!(!i.is_quiet(1_000 + TIMING.resolve_after_ms - 1, TIMING));
        assert!(i.is_quiet(1_000 + TIMING.resolve_after_ms, TIMING));
        i.state = State::Resolved;
        assert!(!i.is_quiet(i64::MAX, TIMING));
    }

    /// Quiet after the resolve delay, resolved only after the reopen window
    /// as well; a return while quiet is a reopening, the second marks it
    /// flapping, and a flapping incident waits the longer quiet period.
    #[test]
    fn a_quiet_incident_resolves_after_the_window_and_a_flapping_one_later() {
        let mut i = open_incident();
        i.last_activity_ms = 1_000;
        let quiet = 1_000 + TIMING.resolve_after_ms;
        assert_eq!(i.returns_at(quiet - 1, TIMING), None, "not quiet yet");
        assert!(
            !i.is_due_to_resolve(quiet, TIMING),
            "quiet, inside the window"
        );
        assert!(!i.is_due_to_resolve(quiet + TIMING.reopen_window_ms - 1, TIMING));
        assert!(i.is_due_to_resolve(quiet + TIMING.reopen_window_ms, TIMING));

        assert_eq!(i.returns_at(quiet, TIMING), Some((1, false)));
        let window_end = quiet + TIMING.reopen_window_ms;
        assert_eq!(i.returns_at(window_end, TIMING), None, "late, not back");
        i.reopenings = 1;
        assert_eq!(i.returns_at(quiet, TIMING), Some((2, true)), "flapping");
        i.reopenings = 2;
        i.flapping = true;
        let window_over = quiet + TIMING.reopen_window_ms;
        assert!(!i.is_due_to_resolve(window_over, TIMING), "flapping waits");
        assert!(!i.is_due_to_resolve(1_000 + TIMING.flap_resolve_after_ms - 1, TIMING));
        assert!(i.is_due_to_resolve(1_000 + TIMING.flap_resolve_after_ms, TIMING));
        i.state = State::Resolved;
        assert_eq!(
            i.returns_at(i64::MAX, TIMING),
            None,
            "a new incident, not a return"
        );
        assert!(!i.is_due_to_resolve(i64::MAX, TIMING));
    }

    /// `incidentState` is stored and read back by name (the CLI, the
    /// sweep and items written by earlier versions share it): each state
    /// reads back as itself, and nothing else reads as a state.
    #[test]
    fn states_are_stored_by_name_and_read_back() {
        for (state, name) in [(State::Open, "open"), (State::Resolved, "resolved")] {
            assert_eq!(state.as_str(), name);
            assert_eq!(State::parse(name), Some(state));
        }
        assert_eq!(State::parse("Open"), None);
        assert_eq!(State::parse(""), None);
    }

    /// A claim is taken on `notificationsSent` = the transition's step, and
    /// confirming it stores step + 1: the opening is the first notification,
    /// the n-th reminder has n before it, so one step follows the other.
    #[test]
    fn each_transition_counts_the_notifications_before_it() {
        assert_eq!(Transition::Opened.step(), 0);
        let mut i = open_incident();
        i.sent = Transition::Opened.step() + 1;
        i.last_notified_ms = Some(0);
        i.entries = 20;
        for n in 1..=3 {
            let at = n as i64 * TIMING.repeat_ms;
            let due = notification_due(&i, at, TIMING);
            assert_eq!(due, Some(Transition::Reminder(n)));
            let due = due.unwrap();
            assert_eq!(due.step(), i.sent, "claimed on what was sent");
            i.sent = due.step() + 1;
            i.last_notified_ms = Some(at);
            i.notified_entries = i.entries;
            i.entries += 1;
        }
    }

    /// However many reminders go out, the history keeps three lines: the
    /// opening, the last reminder (numbered: how many went out), the
    /// resolution.
    #[test]
    fn the_history_stays_bounded_however_many_reminders_go_out() {
        let mut i = open_incident();
        i.remember(Transition::Opened, 0);
        for n in 1..=500 {
            i.remember(Transition::Reminder(n), i64::from(n) * 60_000);
        }
        i.remember(Transition::Resolved, 40_000_000);
        assert_eq!(
            i.history,
            [
                "opened 1970-01-01T00:00:00.000Z",
                "reminder-500 1970-01-01T08:20:00.000Z",
                "resolved 1970-01-01T11:06:40.000Z"
            ]
        );
    }

    #[test]
    fn notification_ids_are_stable_per_transition() {
        assert_eq!(notification_id("ab-2", Transition::Opened), "ab-2#opened");
        assert_eq!(
            notification_id("ab-2", Transition::Reminder(3)),
            "ab-2#reminder-3"
        );
        assert_eq!(
            notification_id("ab-2", Transition::Resolved),
            "ab-2#resolved"
        );
    }
}

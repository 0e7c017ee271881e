use super::*;
use crate::aws::incident_item::item_size;
use crate::incident::clients::{Clients, REGISTERS};
use crate::incident::key::{IncidentKey, KeyKind};
use crate::model::category::Category;

fn delta(clients: &[&str]) -> Delta {
    let mut tally = Clients::default();
    for c in clients {
        tally.add(c);
    }
    Delta {
        key: IncidentKey {
            category: Category::Failure,
            kind: KeyKind::Operation,
            first: "Connect".into(),
            second: Some("AUTHORIZATION_FAILURE".into()),
        },
        entries: clients.len() as u64,
        first_ms: 0,
        last_ms: 0,
        clients: tally,
        top_clients: Vec::new(),
        sample_trace_ids: Vec::new(),
        details: None,
        account_id: None,
        members: Vec::new(),
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn known_after(batches: &[Vec<String>]) -> Known {
    let mut clients = Clients::default();
    let mut exact = BTreeSet::new();
    for batch in batches {
        for c in batch {
            clients.add(c);
            exact.insert(crate::incident::clients::client_key(c));
        }
    }
    Known {
        incident_id: "k-1".into(),
        generation: 1,
        open: true,
        exact: (exact.len() <= EXACT_CLIENTS).then_some(exact),
        sketch: clients.sketch().clone(),
        last_activity_ms: NOW,
        reopenings: 0,
        flapping: false,
    }
}

const NOW: i64 = 1_000_000_000;
const TIMING: Timing = crate::incident::lifecycle::tests::TIMING;

fn plan(known: Option<&Known>, delta: &Delta) -> Plan {
    plan_for(known, delta, NOW, TIMING)
}

/// With nothing open, a batch opens the next generation; with one
/// open, it adds only the client keys and sketch values the item lacks,
/// and once the exact set would pass its bound it switches to the
/// estimate, folding the exact set into the sketch.
#[test]
fn a_write_adds_only_what_the_item_lacks_and_switches_past_the_bound() {
    let few = names("dev-", 10);
    let refs: Vec<&str> = few.iter().map(String::as_str).collect();
    assert_eq!(plan(None, &delta(&refs)), Plan::Open { generation: 1 });
    let mut resolved = known_after(std::slice::from_ref(&few));
    resolved.open = false;
    resolved.generation = 4;
    assert_eq!(
        plan(Some(&resolved), &delta(&refs)),
        Plan::Open { generation: 5 }
    );

    let known = known_after(std::slice::from_ref(&few));
    assert_eq!(
        plan(Some(&known), &delta(&refs)),
        Plan::Add {
            incident_id: "k-1".into(),
            keys: vec![],
            estimated: false,
            sketch: vec![],
            quiet_since_ms: NOW - TIMING.resolve_after_ms,
            reopen: None,
            late: None,
            due_since_ms: NOW - TIMING.resolves_after_ms(false),
        },
        "the same devices again add nothing but their entries"
    );
    let more = names("dev-", 30);
    let more_refs: Vec<&str> = more.iter().map(String::as_str).collect();
    match plan(Some(&known), &delta(&more_refs)) {
        Plan::Add {
            keys,
            estimated: false,
            ..
        } => assert_eq!(keys.len(), 20),
        other => panic!("{other:?}"),
    }
    let past = names("dev-", 33);
    let past_refs: Vec<&str> = past.iter().map(String::as_str).collect();
    match plan(Some(&known), &delta(&past_refs[10..])) {
        Plan::Add {
            keys,
            estimated: true,
            sketch,
            ..
        } => {
            assert!(keys.is_empty());
            let mut all = known.sketch.clone();
            for value in &sketch {
                let read = Sketch::from_values(all.values().into_iter().chain([*value]));
                all = read.sketch;
            }
            assert_eq!(all, known_after(std::slice::from_ref(&past)).sketch);
        }
        other => panic!("{other:?}"),
    }
}

/// The bound the README states: whatever the devices and batches, a key
/// item with every name and detail at its cap (key parts 256 bytes, log
/// group 512, details 1,024, five clients and five traceIds of 256),
/// past its exact set with the sketch at its largest (a value per
/// register, 32 redundant ones, and a write's raises), claimed,
/// reminded, acknowledged (a 64-byte name; a note is the operator's
/// own) and held back stays under 6 KB. A fleet-wide failure's is under
/// 1 KB (`tests/incidents.rs` measures it on moto).
#[test]
fn a_key_item_at_every_cap_stays_within_its_bound() {
    let fleet = names("device-", 10_000);
    let refs: Vec<&str> = fleet.iter().map(String::as_str).collect();
    let mut d = delta(&refs);
    d.key.first = "r".repeat(256);
    d.key.second = Some("x".repeat(256));
    d.details = Some("d".repeat(1024));
    d.account_id = Some("1".repeat(64));
    d.top_clients = (0..5)
        .map(|i| (format!("{i}{}", "c".repeat(255)), 1))
        .collect();
    d.sample_trace_ids = (0..5).map(|i| format!("{i}{}", "t".repeat(255))).collect();
    let (set, _) = opening(
        "0123456789abcdef",
        99,
        &d,
        &"g".repeat(600),
        1_800_000_000_000,
    );
    let mut item: Attributes = set.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    item.insert("incidentKey".into(), s("0123456789abcdef"));
    let largest: Vec<u32> = (0..(REGISTERS + COMPACT_AT + REGISTERS) as u32)
        .map(|i| (i % REGISTERS as u32) * 64 + 1 + i / REGISTERS as u32)
        .collect();
    item.insert("clientSketch".into(), sketch_set(&largest).unwrap());
    let at = n(1_800_000_000_000_i64 + 123_456_789);
    for (name, value) in [
        ("claimToken", s("0123456789abcdef0123456789abcdef")),
        ("claimLeaseMs", at.clone()),
        ("claimStep", s("reminder-99999")),
        ("lastNotifiedMs", at.clone()),
        ("notifiedEntries", n(u64::MAX)),
        ("notificationsSent", n(99_999)),
        ("entryCount", n(u64::MAX)),
        ("batchSeq", n(u64::MAX)),
        (
            "history",
            list(["opened 2027-01-15T08:00:00.000Z".to_owned()]),
        ),
        ("lastReminder", s("reminder-99999 2027-01-15T08:00:00.000Z")),
        ("ackedBy", s("a".repeat(64))),
        ("ackedMs", at.clone()),
        ("heldBack", n(99_999)),
        ("lastSilenceId", s("s-0123456789ab")),
        ("resolvedMs", at.clone()),
        ("expiresAt", n(1_900_000_000)),
    ] {
        item.insert(name.into(), value);
    }
    let size = item_size(&item);
    let entry: Attributes = item
        .iter()
        .filter(|(name, _)| {
            ["incidentKey", "sweepShard"].contains(&name.as_str())
                || crate::aws::incident_item::WATCHED_PROJECTION.contains(&name.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let entry = item_size(&entry);
    eprintln!("a key item at every cap: {size} bytes, its index entry {entry} bytes");
    assert!((5_000..6_144).contains(&size), "{size} bytes");
    assert!((2_048..3_072).contains(&entry), "{entry} bytes");
}

/// An item an earlier version wrote holds its exact set only (up to
/// 10,000 keys, no sketch): the first write folds the set into the
/// sketch, so the estimate counts those clients too.
#[test]
fn an_item_of_an_earlier_version_is_folded_into_the_sketch() {
    let fleet = names("old-", 5_000);
    let mut legacy = known_after(&[]);
    legacy.exact = Some(
        fleet
            .iter()
            .map(|c| crate::incident::clients::client_key(c))
            .collect(),
    );
    let Plan::Add {
        sketch,
        estimated: true,
        ..
    } = plan(Some(&legacy), &delta(&["new-device"]))
    else {
        panic!()
    };
    let estimate = Sketch::from_values(sketch).sketch.estimate();
    assert!((estimate / 5_001.0 - 1.0).abs() < 0.3, "{estimate}");
}

/// A batch after the resolve delay is a return: the write is conditional on
/// the reopenings it was planned with and counts one more; the second marks
/// the incident flapping, for good. A batch within the delay is no return.
#[test]
fn a_batch_after_the_resolve_delay_is_planned_as_a_return() {
    let refs = ["dev-1"];
    let mut known = known_after(&[names("dev-", 1)]);
    let reopen_of =
        |known: &Known, now_ms: i64| match plan_for(Some(known), &delta(&refs), now_ms, TIMING) {
            Plan::Add {
                reopen,
                quiet_since_ms,
                ..
            } => {
                assert_eq!(quiet_since_ms, now_ms - TIMING.resolve_after_ms);
                reopen
            }
            other => panic!("{other:?}"),
        };
    let quiet = NOW + TIMING.resolve_after_ms;
    assert_eq!(reopen_of(&known, quiet - 1), None);
    assert_eq!(
        reopen_of(&known, quiet),
        Some(Reopen {
            was: 0,
            reopenings: 1,
            flapping: false
        })
    );
    known.reopenings = 1;
    assert_eq!(
        reopen_of(&known, quiet),
        Some(Reopen {
            was: 1,
            reopenings: 2,
            flapping: true
        })
    );
    known.reopenings = 7;
    known.flapping = true;
    assert_eq!(
        reopen_of(&known, quiet),
        Some(Reopen {
            was: 7,
            reopenings: 8,
            flapping: true
        })
    );
}

/// A batch after the incident's whole quiet period (it is due to be
/// resolved, the sweep has not yet come) is no return: it adds without
/// counting a reopening (on condition of the reopenings that decide that
/// period), so a sweep running late never makes an incident flap.
#[test]
fn a_batch_after_the_whole_quiet_period_is_late_not_a_return() {
    let mut known = known_after(&[names("dev-", 1)]);
    let plan_at = |known: &Known, now_ms: i64| match plan_for(
        Some(known),
        &delta(&["dev-1"]),
        now_ms,
        TIMING,
    ) {
        Plan::Add {
            reopen,
            late,
            due_since_ms,
            ..
        } => (reopen.is_some(), late, due_since_ms),
        other => panic!("{other:?}"),
    };
    let due = NOW + TIMING.resolves_after_ms(false);
    assert_eq!(plan_at(&known, due - 1), (true, None, NOW - 1));
    assert_eq!(plan_at(&known, due), (false, Some(0), NOW));
    known.flapping = true;
    known.reopenings = 3;
    assert!(plan_at(&known, due).0, "a flapping incident waits longer");
    let flap_due = NOW + TIMING.flap_resolve_after_ms;
    assert_eq!(plan_at(&known, flap_due), (false, Some(3), NOW));
}

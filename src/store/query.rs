//! Reading incidents back, as plain functions: time expressions, which index
//! partitions a filtered list must query (never a Scan), and the summary.

use std::collections::BTreeMap;

use crate::model::category::Category;
use crate::model::time::{parse_rfc3339, start_of_day, utc_day, DAY_MS};
use crate::store::keys::{day_key, SHARDS};

/// A time expression that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {0:?}: expected now, a duration back from now like 15m, 6h or 7d, or RFC 3339 like 2026-11-22T10:00:00Z")]
pub struct InvalidTime(pub String);

/// Parses `now`, a duration back from now (`90s`, `15m`, `6h`, `7d`, `2w`, `1h30m`) or RFC 3339.
pub fn parse_time(expr: &str, now_ms: i64) -> Result<i64, InvalidTime> {
    let expr = expr.trim();
    if expr.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(ms) = parse_rfc3339(expr) {
        return Ok(ms);
    }
    // A duration back from now, as humantime reads it (`90s`, `6h`, `1h30m`, `7d`, `2w`).
    match humantime::parse_duration(expr) {
        Ok(back) if back.as_millis() <= (3650 * DAY_MS) as u128 => {
            Ok(now_ms - back.as_millis() as i64)
        }
        _ => Err(InvalidTime(expr.to_owned())),
    }
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    pub category: Option<Category>,
    pub rule: Option<String>,
    pub client: Option<String>,
    pub since_ms: i64,
    pub until_ms: i64,
}

/// A set of Query requests against one index: for each UTC day of the range,
/// newest first, the partition keys of its shards.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPlan {
    pub index: &'static str,
    pub partition_attribute: &'static str,
    pub days: Vec<Vec<String>>,
    /// Conditions the index key does not cover, as (attribute, value).
    pub filters: Vec<(&'static str, String)>,
}

/// Chooses the index: a rule or a client narrows most; otherwise the category
/// index, over every category when none is given.
pub fn plan(filter: &ListFilter) -> Vec<QueryPlan> {
    let days = days_newest_first(filter.since_ms, filter.until_ms);
    let keys = |value: &str| -> Vec<Vec<String>> {
        days.iter()
            .map(|day| {
                (0..SHARDS)
                    .map(|shard| day_key(value, day, shard))
                    .collect()
            })
            .collect()
    };
    let category_filter = filter.category.map(|c| ("category", c.as_str().to_owned()));
    if let Some(rule) = &filter.rule {
        let mut filters: Vec<_> = category_filter.into_iter().collect();
        filters.extend(filter.client.clone().map(|c| ("clientId", c)));
        return vec![QueryPlan {
            index: "byRule",
            partition_attribute: "ruleDay",
            days: keys(rule),
            filters,
        }];
    }
    if let Some(client) = &filter.client {
        let filters = category_filter.into_iter().collect();
        return vec![QueryPlan {
            index: "byClient",
            partition_attribute: "clientDay",
            days: keys(client),
            filters,
        }];
    }
    let categories: Vec<Category> = match filter.category {
        Some(c) => vec![c],
        None => Category::ALL.to_vec(),
    };
    categories
        .into_iter()
        .map(|c| QueryPlan {
            index: "byCategory",
            partition_attribute: "categoryDay",
            days: keys(c.as_str()),
            filters: Vec::new(),
        })
        .collect()
}

fn days_newest_first(since_ms: i64, until_ms: i64) -> Vec<String> {
    let mut days = Vec::new();
    let mut day = start_of_day(until_ms);
    while day >= start_of_day(since_ms) && days.len() < 3660 {
        days.push(utc_day(day));
        day -= DAY_MS;
    }
    days
}

/// Incidents of a period, counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeriodSummary {
    pub total: u64,
    pub by_category: BTreeMap<String, u64>,
    pub top_rules: Vec<(String, u64)>,
    pub top_clients: Vec<(String, u64)>,
    /// (hour start, count), every hour of the period, oldest first.
    pub per_hour: Vec<(i64, u64)>,
}

/// One incident as the summary sees it.
pub struct Counted<'a> {
    pub time_ms: i64,
    pub category: &'a str,
    pub rule: Option<&'a str>,
    pub client: Option<&'a str>,
}

pub fn summarize<'a>(
    incidents: impl IntoIterator<Item = Counted<'a>>,
    since_ms: i64,
    until_ms: i64,
    top: usize,
) -> PeriodSummary {
    const HOUR: i64 = 3_600_000;
    let first_hour = since_ms.div_euclid(HOUR);
    let hours = (until_ms.div_euclid(HOUR) - first_hour + 1).clamp(1, 24 * 366) as usize;
    let mut per_hour = vec![0u64; hours];
    let mut summary = PeriodSummary::default();
    let mut rules: BTreeMap<&str, u64> = BTreeMap::new();
    let mut clients: BTreeMap<&str, u64> = BTreeMap::new();
    for i in incidents
        .into_iter()
        .filter(|i| (since_ms..=until_ms).contains(&i.time_ms))
    {
        summary.total += 1;
        *summary
            .by_category
            .entry(i.category.to_owned())
            .or_default() += 1;
        if let Some(rule) = i.rule {
            *rules.entry(rule).or_default() += 1;
        }
        if let Some(client) = i.client {
            *clients.entry(client).or_default() += 1;
        }
        let slot = i.time_ms.div_euclid(HOUR) - first_hour;
        if let Some(count) = usize::try_from(slot).ok().and_then(|s| per_hour.get_mut(s)) {
            *count += 1;
        }
    }
    let ranked = |counts: BTreeMap<&str, u64>| {
        let mut v: Vec<(String, u64)> =
            counts.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(top);
        v
    };
    summary.top_rules = ranked(rules);
    summary.top_clients = ranked(clients);
    summary.per_hour = per_hour
        .into_iter()
        .enumerate()
        .map(|(n, c)| ((first_hour + n as i64) * HOUR, c))
        .collect();
    summary
}

/// A horizontal bar for `count` out of `max`, `width` cells wide.
pub fn bar(count: u64, max: u64, width: usize) -> String {
    if max == 0 || count == 0 {
        return String::new();
    }
    let cells = ((count as f64 / max as f64) * width as f64).ceil().max(1.0) as usize;
    "█".repeat(cells.min(width))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_310_400_000; // 2026-11-22T01:20:00Z

    #[test]
    fn time_expressions() {
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("15m", NOW), Ok(NOW - 900_000));
        assert_eq!(parse_time("6h", NOW), Ok(NOW - 6 * 3_600_000));
        assert_eq!(parse_time("7d", NOW), Ok(NOW - 7 * DAY_MS));
        assert_eq!(
            parse_time("2026-11-22T10:00:00Z", NOW),
            parse_rfc3339("2026-11-22T10:00:00Z").ok_or(InvalidTime(String::new()))
        );
        assert_eq!(parse_time("15 minutes", NOW), parse_time("15m", NOW));
        assert_eq!(parse_time("1h30m", NOW), Ok(NOW - 5_400_000));
        assert_eq!(parse_time("0s", NOW), Ok(NOW), "as before: now");
        for bad in [
            "",
            "15",
            "m",
            "-5m",
            "yesterday",
            "99999999999d",
            "2026-11-22",
        ] {
            let err = parse_time(bad, NOW).unwrap_err().to_string();
            assert!(err.contains("15m, 6h or 7d"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_rule_filter_uses_the_rule_index_over_every_day_and_shard() {
        let filter = ListFilter {
            rule: Some("r".into()),
            category: Some(Category::Failure),
            since_ms: NOW - 2 * DAY_MS,
            until_ms: NOW,
            ..Default::default()
        };
        let plans = plan(&filter);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].index, "byRule");
        assert_eq!(plans[0].days.len(), 3);
        assert_eq!(
            plans[0].days[0],
            [
                "r#2026-11-22#0",
                "r#2026-11-22#1",
                "r#2026-11-22#2",
                "r#2026-11-22#3"
            ]
        );
        assert_eq!(plans[0].days[2][0], "r#2026-11-20#0");
        assert_eq!(plans[0].filters, [("category", "Failure".to_owned())]);
    }

    #[test]
    fn without_a_rule_or_client_every_category_is_queried() {
        let filter = ListFilter {
            since_ms: NOW - 3_600_000,
            until_ms: NOW,
            ..Default::default()
        };
        let plans = plan(&filter);
        assert_eq!(plans.len(), 5);
        assert!(plans
            .iter()
            .all(|p| p.index == "byCategory" && p.days.len() == 1));
        let client = plan(&ListFilter {
            client: Some("c".into()),
            ..filter
        });
        assert_eq!(
            (client[0].index, client[0].partition_attribute),
            ("byClient", "clientDay")
        );
    }

    #[test]
    fn summaries_count_rank_and_bucket_by_hour() {
        let since = NOW - 3 * 3_600_000;
        let rows = [
            (NOW - 10, "Failure", Some("a"), Some("c1")),
            (NOW - 20, "Failure", Some("b"), Some("c1")),
            (NOW - 30, "RuleNotFound", Some("b"), None),
            (since + 1, "Warning", None, Some("c2")),
            (since - 1, "Warning", None, None),
        ];
        let s = summarize(
            rows.iter().map(|&(t, c, r, cl)| Counted {
                time_ms: t,
                category: c,
                rule: r,
                client: cl,
            }),
            since,
            NOW,
            1,
        );
        assert_eq!(s.total, 4, "the entry before the period is left out");
        assert_eq!(s.by_category["Failure"], 2);
        assert_eq!(s.top_rules, [("b".to_owned(), 2)]);
        assert_eq!(s.top_clients, [("c1".to_owned(), 2)]);
        assert_eq!(s.per_hour.len(), 4);
        assert_eq!(s.per_hour.iter().map(|(_, c)| c).sum::<u64>(), 4);
        assert_eq!(s.by_category["Warning"], 1);
        assert_eq!(s.per_hour.last().unwrap().1, 3);
    }

    #[test]
    fn bars_scale() {
        assert_eq!(bar(0, 10, 20), "");
        assert_eq!(bar(10, 10, 20).chars().count(), 20);
        assert_eq!(bar(1, 1000, 20).chars().count(), 1);
    }
}

//! `--format text`: the report as a terminal table, with bar characters for
//! the trend.

use std::fmt::Write as _;

use super::figures::{Report, TrendPoint};
use super::units::{date, duration, maybe_duration, percent};
use crate::store::report::Spread;

/// Widest trend bar, in characters.
const BAR: i64 = 24;

fn spread(s: &Spread, what: &str) -> String {
    if s.count == 0 {
        return format!("— (no {what})");
    }
    format!(
        "p50 {} · p90 {} · max {}  ({} {what})",
        maybe_duration(s.p50),
        maybe_duration(s.p90),
        maybe_duration(s.max),
        s.count
    )
}

fn by_count(items: impl IntoIterator<Item = (String, i64)>) -> String {
    let mut v: Vec<(String, i64)> = items.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// A bar of `full` characters for `a`, then `shade` for `b`, scaled so `max` is [`BAR`] wide.
fn bar(a: i64, b: i64, max: i64) -> String {
    let scale = |n: i64| if max == 0 { 0 } else { (n * BAR + max - 1) / max };
    let (la, lab) = (scale(a), scale(a + b));
    format!("{}{}", "█".repeat(la as usize), "░".repeat((lab - la).max(0) as usize))
}

/// Everything in the report, for a terminal.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let o = &r.orders;
    let q = &r.questions;
    let m = &r.moderators;
    let _ = writeln!(
        s,
        "Automation report {} → {} (UTC, per {}), generated {}\n",
        r.range.since, r.range.until, r.range.bucket, r.range.generated_at
    );
    let row = |s: &mut String, label: &str, value: String, note: String| {
        let line = format!("  {label:<36}{value:>8}  {note}");
        let _ = writeln!(s, "{}", line.trim_end());
    };
    s.push_str("Orders (received in the range, where they are now)\n");
    row(&mut s, "paid", o.paid.to_string(), String::new());
    row(&mut s, "completed", o.completed.to_string(), String::new());
    row(&mut s, "  automatically", o.completed_automatically.to_string(), percent(o.automation_rate));
    row(&mut s, "  after contact with the customer", o.completed_after_contact.to_string(), String::new());
    row(&mut s, "  by a moderator", o.completed_by_moderator.to_string(), String::new());
    row(&mut s, "refunded", o.refunded.to_string(), String::new());
    row(&mut s, "failed", o.failed.to_string(), String::new());
    let oldest = o.oldest_open_age_secs.map(|a| format!(", oldest {}", duration(a * 1000))).unwrap_or_default();
    row(
        &mut s,
        "still open",
        o.open.to_string(),
        format!("{} with a moderator, {} waiting for the customer{oldest}", o.open_escalated, o.open_needs_customer),
    );
    let _ = writeln!(s, "  {:<36}{}", "payment → Send", spread(&o.payment_to_send_ms, "orders"));

    s.push_str("\nCustomer questions\n");
    row(&mut s, "asked", q.asked.to_string(), String::new());
    row(
        &mut s,
        "resolved by the agent",
        q.resolved_by_agent.to_string(),
        format!("resolution rate {}", percent(q.resolution_rate)),
    );
    row(&mut s, "answered, then asked again", q.reopened.to_string(), String::new());
    row(&mut s, "escalated", q.escalated.to_string(), by_count(q.escalated_by_reason.clone()));
    row(&mut s, "answered, window still open", q.pending.to_string(), String::new());
    row(&mut s, "escalated, answered by a moderator", q.answered_by_moderator.to_string(), String::new());
    let _ = writeln!(s, "  {:<36}{}", "time to first answer", spread(&q.first_answer_ms, "questions answered"));
    row(
        &mut s,
        "messages per resolved conversation",
        q.messages_per_resolved_conversation.map_or_else(|| "—".to_owned(), |x| format!("{x:.1}")),
        format!("{} conversations", q.resolved_conversations),
    );

    s.push_str("\nModerators\n");
    row(&mut s, "cases opened", m.cases_opened.to_string(), by_count(m.cases_opened_by_reason.clone()));
    row(&mut s, "cases closed", m.cases_closed.to_string(), String::new());
    let _ = writeln!(s, "  {:<36}{}", "time to first action", spread(&m.first_action_ms, "cases"));
    row(&mut s, "cases without a moderator action", m.cases_without_action.to_string(), String::new());
    let a = &m.open_cases_by_age;
    row(
        &mut s,
        "open cases now",
        a.total().to_string(),
        format!("<1h {} · 1–24h {} · 1–7d {} · >7d {}", a.under_1h, a.h1_to_24h, a.d1_to_7d, a.over_7d),
    );
    for x in &m.actions {
        row(
            &mut s,
            &format!("moderator {}", x.moderator_id),
            x.total.to_string(),
            by_count(x.by_action.iter().map(|(k, v)| (k.clone(), *v))),
        );
    }
    row(&mut s, "refused (not a moderator)", m.refused.to_string(), String::new());

    trend(&mut s, r);
    gaps(&mut s, r);
    s
}

fn trend(s: &mut String, r: &Report) {
    let _ =
        writeln!(s, "\nTrend per {} (orders: █ completed ░ not yet; questions: █ resolved ░ other)", r.range.bucket);
    let _ = writeln!(
        s,
        "  {:<10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5}  {:<w$}  questions",
        "start",
        "paid",
        "done",
        "auto",
        "asked",
        "resol",
        "escal",
        "cases",
        "orders",
        w = BAR as usize
    );
    let max_orders = r.trend.iter().map(|p| p.paid).max().unwrap_or(0);
    let max_questions = r.trend.iter().map(|p| p.questions).max().unwrap_or(0);
    for p @ TrendPoint { paid, completed, .. } in &r.trend {
        let orders = bar(*completed, paid - completed, max_orders);
        let questions = bar(p.resolved_by_agent, p.questions - p.resolved_by_agent, max_questions);
        let line = format!(
            "  {:<10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5}  {:<w$}  {}",
            date(&p.start),
            paid,
            completed,
            p.completed_automatically,
            p.questions,
            p.resolved_by_agent,
            p.escalated,
            p.cases_opened,
            orders,
            questions,
            w = BAR as usize
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
}

fn gaps(s: &mut String, r: &Report) {
    let g = &r.content_gap_summary;
    let _ = writeln!(
        s,
        "\nContent gaps: {} escalated questions in {} groups{}",
        g.questions,
        g.groups,
        if g.unclustered > 0 { format!(" ({} not grouped: too many groups)", g.unclustered) } else { String::new() }
    );
    for (i, gap) in r.content_gaps.iter().enumerate() {
        let _ = writeln!(s, "  {}. {} · {} question(s)", i + 1, gap.id, gap.size);
        for q in &gap.questions {
            let _ = writeln!(s, "       ? {}", one_line(q));
        }
        for a in &gap.answers {
            let _ = writeln!(s, "       moderator: {}", one_line(a));
        }
        if let Some(cmd) = &gap.approve {
            let _ = writeln!(s, "       approve in the moderator chat: {cmd}");
        }
    }
}

/// A text on one line, at most 100 characters.
pub(super) fn one_line(t: &str) -> String {
    let flat = t.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= 100 {
        return flat;
    }
    format!("{}…", flat.chars().take(99).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value() {
        assert_eq!(bar(0, 0, 0), "");
        assert_eq!(bar(12, 12, 24), format!("{}{}", "█".repeat(12), "░".repeat(12)));
        assert_eq!(bar(1, 0, 1000), "█", "a non-zero value shows");
    }
}

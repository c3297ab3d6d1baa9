//! The summary the moderator chat gets (`/report`, and weekly): the main
//! figures, a short trend and the largest content gaps with the command
//! that approves each, in one Telegram message.
//!
//! Telegram refuses a text over 4096 UTF-16 units on every retry, so the
//! summary is built within it: the trend shows the last [`TREND_LINES`]
//! buckets, examples are one line each, and whatever still does not fit is
//! cut at a line with a marker that says where the whole report is.

use std::fmt::Write as _;

use super::figures::{self, Report};
use super::gaps::Vectorizer;
use super::text::one_line;
use super::units::{date, duration, maybe_duration, percent};
use super::{Range, ReportSettings};
use crate::knowledge::Redactor;
use crate::store::{Store, StoreResult};
use crate::telegram::utf16_len;

/// Telegram's limit for one message's text, in UTF-16 code units.
pub const TELEGRAM_LIMIT: usize = 4096;
/// Trend lines in the summary (the most recent buckets).
const TREND_LINES: usize = 14;
/// Content gaps in the summary.
const GAPS: usize = 5;
const CUT: &str = "… (cut: `tribute-assistant report` shows everything)";

/// Reads the report for `range` and writes its summary.
pub async fn build_text(store: &Store, range: &Range, settings: &ReportSettings, now: i64) -> StoreResult<String> {
    let vectorizer = Vectorizer::new();
    let redactor = Redactor::default();
    let opts = figures::Options { gaps: GAPS, vectorizer: &vectorizer, redactor: &redactor };
    let report = figures::build(store, range, settings, now, &opts).await?;
    Ok(render(&report))
}

/// The summary of `r`, at most [`TELEGRAM_LIMIT`] UTF-16 units.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let (o, q, m) = (&r.orders, &r.questions, &r.moderators);
    let _ = writeln!(s, "📊 Report {} → {} (UTC)", date(&r.range.since), date(&r.range.until));
    let _ = writeln!(
        s,
        "\n🧾 Orders: {} paid · {} completed ({} automatically {}, {} after contact, {} by a moderator) · {} refunded · {} failed · {} open{}",
        o.paid,
        o.completed,
        o.completed_automatically,
        percent(o.automation_rate),
        o.completed_after_contact,
        o.completed_by_moderator,
        o.refunded,
        o.failed,
        o.open,
        o.oldest_open_age_secs.map(|a| format!(" (oldest {})", duration(a * 1000))).unwrap_or_default(),
    );
    let _ = writeln!(
        s,
        "Payment → Send: {}, the slowest {}",
        spread(o.payment_to_send_ms.p50, o.payment_to_send_ms.p90),
        maybe_duration(o.payment_to_send_ms.max)
    );
    let _ = writeln!(
        s,
        "\n💬 Questions: {} asked · {} resolved by the agent ({}) · {} asked again · {} escalated · {} answered by a moderator",
        q.asked,
        q.resolved_by_agent,
        percent(q.resolution_rate),
        q.reopened,
        q.escalated,
        q.answered_by_moderator
    );
    let _ = writeln!(s, "First answer: {}", spread(q.first_answer_ms.p50, q.first_answer_ms.p90));
    let a = &m.open_cases_by_age;
    let _ = writeln!(
        s,
        "\n🧑‍💼 Cases: {} opened · {} closed · {} open now (>1 day: {}) · first action: {}",
        m.cases_opened,
        m.cases_closed,
        a.total(),
        a.d1_to_7d + a.over_7d,
        spread(m.first_action_ms.p50, m.first_action_ms.p90)
    );
    let _ = writeln!(s, "\n📈 Per {}: paid / completed / questions / escalated", r.range.bucket);
    let skip = r.trend.len().saturating_sub(TREND_LINES);
    let max = r.trend.iter().map(|p| p.paid).max().unwrap_or(0);
    for p in &r.trend[skip..] {
        let blocks = if max == 0 { 0 } else { ((p.paid * 8 + max - 1) / max) as usize };
        let _ = writeln!(
            s,
            "{} {:<8} {} / {} / {} / {}",
            date(&p.start).get(5..).unwrap_or_default(),
            "▮".repeat(blocks),
            p.paid,
            p.completed,
            p.questions,
            p.escalated
        );
    }
    if r.content_gaps.is_empty() {
        let _ = writeln!(s, "\n🕳 Content gaps: none (no escalated questions)");
    } else {
        let _ = writeln!(
            s,
            "\n🕳 Content gaps ({} escalated questions in {} groups), largest first:",
            r.content_gap_summary.questions, r.content_gap_summary.groups
        );
        for g in &r.content_gaps {
            let example = g.questions.first().map(|x| one_line(x)).unwrap_or_default();
            let approve = g.approve.as_deref().map(|c| format!(" → {c}")).unwrap_or_default();
            let _ = writeln!(s, "• {} ×{}: {example}{approve}", g.id, g.size);
        }
    }
    fit(s.trim_end())
}

/// The median and the 90th percentile as a moderator reads them on a phone:
/// "half within 4s, 9 in 10 within 2h 08m"; "none yet" without a figure.
fn spread(p50: Option<i64>, p90: Option<i64>) -> String {
    match (p50, p90) {
        (Some(a), Some(b)) => format!("half within {}, 9 in 10 within {}", duration(a), duration(b)),
        _ => "none yet".to_owned(),
    }
}

/// `text` if it fits one message, else its first lines and [`CUT`].
pub fn fit(text: &str) -> String {
    if utf16_len(text) <= TELEGRAM_LIMIT {
        return text.to_owned();
    }
    let budget = TELEGRAM_LIMIT - utf16_len(CUT) - 1;
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if utf16_len(&out) + utf16_len(line) > budget {
            break;
        }
        out.push_str(line);
    }
    if out.is_empty() {
        // One line longer than the message: its beginning.
        let mut units = 0;
        for c in text.chars() {
            units += c.len_utf16();
            if units > budget {
                break;
            }
            out.push(c);
        }
        out.push('\n');
    }
    format!("{out}{CUT}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_summary_is_cut_at_a_line_within_the_limit() {
        let text = (0..2000).map(|i| format!("line {i} 🆕")).collect::<Vec<_>>().join("\n");
        let fitted = fit(&text);
        assert!(utf16_len(&fitted) <= TELEGRAM_LIMIT);
        assert!(fitted.starts_with("line 0 🆕\nline 1 🆕\n"));
        assert!(fitted.ends_with(CUT));
        let one = "я".repeat(9000);
        let fitted = fit(&one);
        assert!(utf16_len(&fitted) <= TELEGRAM_LIMIT && fitted.starts_with("яяя"));
        assert_eq!(fit("short"), "short");
    }
}

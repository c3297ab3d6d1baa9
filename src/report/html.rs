//! `--format html`: one self-contained page (inline CSS and SVG, no script,
//! no external assets) that reads on a phone: the headline figures as
//! tiles, the trend as stacked column charts, the tables, the content gaps.
//!
//! Written for the shop owner, not for us: every code in words
//! ([`super::words`]), every missing figure with the reason it is missing,
//! percentiles as "half within … , 9 in 10 within …" with the definition
//! one tap away, and charts whose text keeps its size in CSS pixels at any
//! width (the SVG has no `viewBox` to shrink it: columns are placed in
//! percent of the width, heights in pixels).

use std::fmt::Write as _;

use super::figures::{Report, TrendPoint};
use super::units::{duration, percent};
use super::words::{self, count, times};
use crate::export::formats::html_escape as esc;
use crate::store::report::Spread;

/// What only the report adds to the pages' shared look
/// ([`crate::export::formats::PAGE_STYLE`]): tiles, charts, content gaps.
pub const STYLE: &str = "\
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px;margin:0 0 14px}
.tile{background:#fff;border:1px solid #ddd;border-radius:10px;padding:10px 12px}
.tile .v{font-size:26px;font-weight:600}.tile .l{font-size:13px;color:#444}
.tile .why{font-size:12px;color:#777;margin-top:3px}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.none{color:#777}
.scroll{overflow-x:auto}
svg.chart{width:100%;display:block;margin:6px 0 2px}
svg.chart text{font-size:12px;fill:#444}
svg.chart text.tick{fill:#666;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg.chart line.grid{stroke:#e6e6e6}svg.chart line.base{stroke:#999}
.legend span{display:inline-block;margin-right:12px;font-size:13px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
details{margin:6px 0}details summary{cursor:pointer;color:#1a5fb4;font-size:14px}
details.def p{margin:6px 0;font-size:14px}
.gap{border-top:1px solid #eee;padding:8px 0}.gap:first-of-type{border-top:0}
.gap h3{font-size:15px;margin:0 0 4px}.gap ul{margin:4px 0;padding-left:20px}
.gap .answer{background:#f1f8e9;border-radius:8px;padding:6px 10px;margin:4px 0;white-space:pre-wrap}
@media (max-width:600px){.tile .v{font-size:22px}svg.chart .minor{display:none}}
";

const AUTO: &str = "#2e7d32";
const CONTACT: &str = "#81c784";
const MODERATOR: &str = "#7e57c2";
const OTHER: &str = "#cfd8dc";
const ESCALATED: &str = "#e0a800";

const DAY_MS: i64 = 86_400_000;

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>tribute-assistant automation report</title>\n<style>\n{}{STYLE}</style></head><body>\n\
         <header><h1>Automation report</h1><p id=\"period\">{} · per {} · times in UTC</p>\
         <p id=\"generated\">Made on {}</p></header>\n<main>\n",
        crate::export::formats::PAGE_STYLE,
        esc(&period(r.range.since_ms, r.range.until_ms)),
        esc(r.range.bucket),
        esc(&words::day_and_time(r.range.generated_at_ms)),
    );
    tiles(&mut s, r);
    orders(&mut s, r);
    questions(&mut s, r);
    moderators(&mut s, r);
    gaps(&mut s, r);
    s.push_str("</main>\n</body></html>\n");
    s
}

/// `[since, until)` as days when it is whole days ("7 December 2026 –
/// 6 January 2027"; the end is exclusive, so the last day is the one
/// before `until`), else as times.
fn period(since: i64, until: i64) -> String {
    if since % DAY_MS == 0 && until % DAY_MS == 0 {
        let (first, last) = (words::day(since), words::day(until - 1));
        if first == last {
            first
        } else {
            format!("{first} – {last}")
        }
    } else {
        format!("{} – {}", words::day_and_time(since), words::day_and_time(until))
    }
}

/// Why the automation rate has no figure.
fn why_no_automation(r: &Report) -> &'static str {
    if r.orders.paid == 0 {
        "no orders in this period"
    } else {
        "no order was completed in this period"
    }
}

/// Why the resolution rate has no figure.
fn why_no_resolution(r: &Report) -> String {
    let q = &r.questions;
    if q.asked == 0 {
        "no customer questions in this period".to_owned()
    } else {
        format!("every question was answered less than {} ago: too early to say whether it was resolved", window(r))
    }
}

/// The resolution window: "24 hours".
fn window(r: &Report) -> String {
    let secs = r.range.resolution_window_secs;
    if secs % 3600 == 0 {
        count((secs / 3600) as i64, "hour", "hours")
    } else {
        duration(secs as i64 * 1000)
    }
}

fn tiles(s: &mut String, r: &Report) {
    let (o, q) = (&r.orders, &r.questions);
    s.push_str("<div class=\"tiles\" id=\"headline\">\n");
    let automation_why = o.automation_rate.is_none().then(|| why_no_automation(r).to_owned());
    let resolution_why = q.resolution_rate.is_none().then(|| why_no_resolution(r));
    let open = r.moderators.open_cases_by_age.total();
    for (id, value, label, why) in [
        ("paid", o.paid.to_string(), "orders paid", (o.paid == 0).then(|| "no orders in this period".to_owned())),
        ("completed", o.completed.to_string(), "completed", None),
        ("automation", percent(o.automation_rate), "completed automatically", automation_why),
        ("resolution", percent(q.resolution_rate), "questions resolved by the agent", resolution_why),
        ("escalated", q.escalated.to_string(), "questions handed to a person", None),
        ("open-cases", open.to_string(), "cases open now", None),
    ] {
        let why = why.map(|w| format!("<div class=\"why\">{}</div>", esc(&w))).unwrap_or_default();
        let _ = writeln!(
            s,
            "<div class=\"tile\" id=\"tile-{id}\"><div class=\"v\">{}</div><div class=\"l\">{label}</div>{why}</div>",
            esc(&value)
        );
    }
    s.push_str("</div>\n");
}

fn row(s: &mut String, key: &str, label: &str, value: impl std::fmt::Display, note: &str) {
    let _ = writeln!(
        s,
        "<tr data-key=\"{}\"><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
        esc(key),
        esc(label),
        esc(&value.to_string()),
        esc(note)
    );
}

/// A rate as the note of a row: "66% of the completed orders", or why there is none.
fn rate_note(rate: Option<f64>, of: &str, why: &str) -> String {
    match rate {
        Some(_) => format!("{} of {of}", percent(rate)),
        None => why.to_owned(),
    }
}

/// A duration's spread in words: the median is the figure, the note says
/// "half of the orders within 4s, 9 in 10 within 2h 08m, the slowest took
/// 1d 17h (285 orders)"; the codes stay in the row's `title`.
fn spread_row(s: &mut String, key: &str, label: &str, sp: &Spread, noun: (&str, &str), none: &str) {
    let (one, many) = noun;
    let (value, note) = match (sp.p50, sp.p90, sp.max) {
        (Some(p50), _, _) if sp.count == 1 => (duration(p50), format!("1 {one}")),
        (Some(p50), Some(p90), Some(max)) => (
            duration(p50),
            format!(
                "half of the {many} within {}, 9 in 10 within {}, the slowest took {} ({})",
                duration(p50),
                duration(p90),
                duration(max),
                count(sp.count, one, many)
            ),
        ),
        _ => ("—".to_owned(), none.to_owned()),
    };
    let title = match (sp.p50, sp.p90, sp.max) {
        (Some(p50), Some(p90), Some(max)) => {
            format!(" title=\"p50 {} · p90 {} · max {}\"", duration(p50), duration(p90), duration(max))
        }
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "<tr data-key=\"{key}\"{title}><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
        esc(label),
        esc(&value),
        esc(&note)
    );
}

/// The definition behind "half within" and "9 in 10 within", one tap away.
const SPREAD_DEFINITION: &str = "<details class=\"def\"><summary>How these times are measured</summary>\
<p>The figure is the median: half of them took at most this long (statisticians call it p50). \
\"9 in 10 within\" is the 90th percentile (p90): nine in ten took at most this long, the rest longer. \
\"The slowest\" is the longest one. Percentiles are nearest-rank: sorted from fastest to slowest, \
the median of n is the one at position ⌈n/2⌉, the 90th percentile the one at ⌈0.9·n⌉.</p></details>\n";

fn legend(s: &mut String, items: &[(&str, &str)]) {
    s.push_str("<div class=\"legend\">");
    for (color, label) in items {
        let _ = write!(s, "<span><i style=\"background:{color}\"></i>{}</span>", esc(label));
    }
    s.push_str("</div>\n");
}

fn orders(s: &mut String, r: &Report) {
    let o = &r.orders;
    s.push_str("<section id=\"orders\"><h2>Orders</h2>\n");
    let series = [
        (AUTO, "automatically"),
        (CONTACT, "after contact"),
        (MODERATOR, "by a moderator"),
        (OTHER, "not completed (yet)"),
    ];
    legend(s, &series);
    column_chart(s, "trend-orders", "Orders", r, &series, |p| {
        vec![p.completed_automatically, p.completed_after_contact, p.completed_by_moderator, p.paid - p.completed]
    });
    s.push_str("<div class=\"scroll\"><table>\n");
    let none = if o.paid == 0 { "no orders in this period" } else { "" };
    row(s, "paid", "paid", o.paid, if o.paid == 0 { none } else { "received in the range" });
    row(s, "completed", "completed", o.completed, "Send pressed");
    let automation = rate_note(o.automation_rate, "the completed orders", why_no_automation(r));
    row(s, "completed_automatically", "— automatically", o.completed_automatically, &automation);
    row(s, "completed_after_contact", "— after contact with the customer", o.completed_after_contact, "");
    row(s, "completed_by_moderator", "— by a moderator", o.completed_by_moderator, "");
    row(s, "refunded", "refunded", o.refunded, "");
    row(s, "failed", "failed", o.failed, "");
    let oldest = o.oldest_open_age_secs.map(|a| format!("the oldest for {}", duration(a * 1000))).unwrap_or_default();
    row(s, "open", "still open", o.open, &oldest);
    row(s, "open_escalated", "— with a moderator", o.open_escalated, "");
    row(s, "open_needs_customer", "— waiting for the customer", o.open_needs_customer, "");
    spread_row(
        s,
        "payment_to_send",
        "from payment to Send",
        &o.payment_to_send_ms,
        ("order", "orders"),
        "no order was completed in this period",
    );
    s.push_str("</table></div>\n");
    s.push_str(SPREAD_DEFINITION);
    s.push_str("</section>\n");
}

fn questions(s: &mut String, r: &Report) {
    let q = &r.questions;
    s.push_str("<section id=\"questions\"><h2>Customer questions</h2>\n");
    let series =
        [(AUTO, "resolved by the agent"), (ESCALATED, "handed to a person"), (OTHER, "asked again / too early")];
    legend(s, &series);
    column_chart(s, "trend-questions", "Customer questions", r, &series, |p| {
        vec![p.resolved_by_agent, p.escalated, p.questions - p.resolved_by_agent - p.escalated]
    });
    s.push_str("<div class=\"scroll\"><table>\n");
    row(s, "asked", "asked", q.asked, if q.asked == 0 { "no customer questions in this period" } else { "" });
    let resolution = rate_note(q.resolution_rate, "the questions old enough to tell", &why_no_resolution(r));
    row(s, "resolved_by_agent", "resolved by the agent", q.resolved_by_agent, &resolution);
    row(s, "reopened", "answered, then asked again", q.reopened, "");
    row(s, "escalated", "handed to a person", q.escalated, "");
    for (reason, n) in &q.escalated_by_reason {
        row(s, &format!("reason-{reason}"), &format!("— {}", words::reason(reason)), n, "");
    }
    row(s, "pending", "answered, too early to tell", q.pending, &format!("answered less than {} ago", window(r)));
    row(s, "answered_by_moderator", "handed over, then answered by a moderator", q.answered_by_moderator, "");
    spread_row(
        s,
        "first_answer",
        "time to the first answer",
        &q.first_answer_ms,
        ("question", "questions"),
        "no question was answered in this period",
    );
    let (per, note) = match q.messages_per_resolved_conversation {
        Some(x) => (format!("{x:.1}"), count(q.resolved_conversations, "conversation", "conversations")),
        None => ("—".to_owned(), "no conversation was resolved by the agent in this period".to_owned()),
    };
    row(s, "messages_per_resolved_conversation", "messages per resolved conversation", per, &note);
    s.push_str("</table></div>\n");
    s.push_str(SPREAD_DEFINITION);
    s.push_str("</section>\n");
}

fn moderators(s: &mut String, r: &Report) {
    let m = &r.moderators;
    s.push_str("<section id=\"moderators\"><h2>Moderators</h2>\n<div class=\"scroll\"><table>\n");
    row(s, "cases_opened", "cases opened", m.cases_opened, "");
    for (reason, n) in &m.cases_opened_by_reason {
        row(s, &format!("case-reason-{reason}"), &format!("— {}", words::reason(reason)), n, "");
    }
    row(s, "cases_closed", "cases closed", m.cases_closed, "");
    spread_row(
        s,
        "first_action",
        "time to a moderator's first action",
        &m.first_action_ms,
        ("case", "cases"),
        "no moderator acted on a case opened in this period",
    );
    row(s, "cases_without_action", "cases without a moderator action", m.cases_without_action, "");
    let a = &m.open_cases_by_age;
    row(s, "open_cases", "cases open now", a.total(), "");
    for (key, label, n) in [
        ("under_1h", "— open under 1 hour", a.under_1h),
        ("1h_to_24h", "— open 1 to 24 hours", a.h1_to_24h),
        ("1d_to_7d", "— open 1 to 7 days", a.d1_to_7d),
        ("over_7d", "— open over 7 days", a.over_7d),
    ] {
        row(s, &format!("open-{key}"), label, n, "");
    }
    for x in &m.actions {
        let mut by: Vec<(&String, &i64)> = x.by_action.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let by: Vec<String> =
            by.iter().map(|(k, v)| format!("{} {}", words::moderator_action(k), times(**v))).collect();
        row(
            s,
            &format!("moderator-{}", x.moderator_id),
            &format!("moderator {} (Telegram user)", x.moderator_id),
            x.total,
            &by.join("; "),
        );
    }
    row(s, "refused", "messages refused: not from a moderator", m.refused, "");
    s.push_str("</table></div>\n");
    s.push_str(SPREAD_DEFINITION);
    s.push_str("</section>\n");
}

fn gaps(s: &mut String, r: &Report) {
    let g = &r.content_gap_summary;
    let _ = writeln!(
        s,
        "<section id=\"content-gaps\"><h2>Content gaps</h2>\n<p class=\"muted\">{} in {}, \
         largest first. Each group is a suggested FAQ entry; approve it in the moderator chat with the command shown.</p>",
        count(g.questions as i64, "question handed to a person", "questions handed to a person"),
        count(g.groups as i64, "group", "groups"),
    );
    for gap in &r.content_gaps {
        let _ = writeln!(
            s,
            "<div class=\"gap\" id=\"gap-{id}\" data-size=\"{n}\"><h3>{id} · {}</h3><ul>",
            count(gap.size as i64, "question", "questions"),
            id = esc(&gap.id),
            n = gap.size
        );
        for q in &gap.questions {
            let _ = writeln!(s, "<li>{}</li>", esc(q));
        }
        s.push_str("</ul>\n");
        for a in &gap.answers {
            let _ = writeln!(s, "<div class=\"answer\">{}</div>", esc(a));
        }
        match &gap.approve {
            Some(cmd) => {
                let _ = writeln!(s, "<p>Approve in the moderator chat: <code>{}</code></p>", esc(cmd));
            }
            None => s.push_str(
                "<p class=\"muted\">No moderator has answered these yet: answer one of these customers on \
                 their case, and the group can be approved.</p>\n",
            ),
        }
        s.push_str("</div>\n");
    }
    s.push_str("</section>\n");
}

/// Chart geometry, CSS pixels: room above the plot for the top tick's
/// label, the plot, and the axis labels below it.
const TOP: f64 = 16.0;
const PLOT: f64 = 160.0;
const AXIS: f64 = 22.0;

/// A round step for about four gridlines up to `max` (1, 2, 5, 10, 20, 50…).
fn tick_step(max: i64) -> i64 {
    let target = (max as f64 / 4.0).max(1.0);
    let mut magnitude = 1i64;
    loop {
        for m in [1, 2, 5] {
            if (m * magnitude) as f64 >= target {
                return m * magnitude;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// Which buckets get a date under the axis, and whether only wide screens
/// show it (`minor`, hidden on phones): the first and the last always,
/// every `minor`-th on wide screens and every `major`-th (a multiple of
/// `minor`, so the two sets line up) on phones. A label that would crowd
/// the last one is left out.
fn axis_labels(n: usize) -> Vec<(usize, bool)> {
    if n == 0 {
        return Vec::new();
    }
    let minor = n.div_ceil(12).max(1);
    let major = n.div_ceil(5).div_ceil(minor).max(1) * minor;
    let last = n - 1;
    (0..n)
        .filter_map(|i| {
            let room = |step: usize| i == last || (last - i) as f64 >= 0.6 * step as f64;
            if (i % major == 0 && room(major)) || i == last {
                Some((i, false))
            } else if i % minor == 0 && room(minor) {
                Some((i, true))
            } else {
                None
            }
        })
        .collect()
}

/// Stacked columns, one per trend bucket; `values` gives each bucket's
/// stack in the order of `series`. A y-scale of round figures, a date
/// under the first, the last and evenly spaced columns, a `<title>` (a
/// tooltip) per column and, one tap away, the table of every figure.
fn column_chart(
    s: &mut String,
    id: &str,
    what: &str,
    r: &Report,
    series: &[(&str, &str)],
    values: impl Fn(&TrendPoint) -> Vec<i64>,
) {
    let n = r.trend.len();
    let per = if r.range.bucket == "week" { "week" } else { "day" };
    let max = r.trend.iter().map(|p| values(p).iter().map(|v| (*v).max(0)).sum::<i64>()).max().unwrap_or(0);
    let step = tick_step(max);
    let top = ((max + step - 1) / step).max(1) * step;
    let height = TOP + PLOT + AXIS;
    let y_of = |v: i64| TOP + PLOT - v as f64 / top as f64 * PLOT;
    let pct = |x: f64| x / n.max(1) as f64 * 100.0;
    let _ = writeln!(
        s,
        "<svg class=\"chart\" id=\"{id}\" width=\"100%\" height=\"{height}\" role=\"img\" \
         aria-label=\"{} per {per}, up to {max}\" data-points=\"{n}\" data-max=\"{max}\">",
        esc(what)
    );
    let mut tick = step;
    while tick <= top {
        let y = y_of(tick);
        let _ = writeln!(s, "<line class=\"grid\" x1=\"0\" y1=\"{y:.1}\" x2=\"100%\" y2=\"{y:.1}\"/>");
        tick += step;
    }
    let base = y_of(0);
    for (i, p) in r.trend.iter().enumerate() {
        let vs = values(p);
        let title: Vec<String> = series.iter().zip(&vs).map(|((_, l), v)| format!("{l} {v}")).collect();
        let when = if per == "week" { format!("week of {}", words::day(p.start_ms)) } else { words::day(p.start_ms) };
        let _ = write!(s, "<g class=\"col\"><title>{}: {}</title>", esc(&when), esc(&title.join(", ")));
        let mut y = base;
        for ((color, _), v) in series.iter().zip(&vs) {
            let h = (*v).max(0) as f64 / top as f64 * PLOT;
            if h > 0.0 {
                y -= h;
                let _ = write!(
                    s,
                    "<rect x=\"{:.3}%\" y=\"{y:.1}\" width=\"{:.3}%\" height=\"{h:.1}\" fill=\"{color}\" data-value=\"{v}\"/>",
                    pct(i as f64 + 0.1),
                    pct(0.8)
                );
            }
        }
        s.push_str("</g>\n");
    }
    let _ = writeln!(s, "<line class=\"base\" x1=\"0\" y1=\"{base}\" x2=\"100%\" y2=\"{base}\"/>");
    // The scale on top of the columns, each figure just above its gridline.
    let mut tick = step;
    while tick <= top {
        let _ =
            writeln!(s, "<text class=\"tick\" x=\"0\" y=\"{:.1}\" font-size=\"12\">{tick}</text>", y_of(tick) - 3.0);
        tick += step;
    }
    for (i, minor) in axis_labels(n) {
        let (x, anchor) = if n == 1 {
            (50.0, "middle")
        } else if i == 0 {
            (0.0, "start")
        } else if i == n - 1 {
            (100.0, "end")
        } else {
            (pct(i as f64 + 0.5), "middle")
        };
        let _ = writeln!(
            s,
            "<text class=\"x{}\" x=\"{x:.3}%\" y=\"{:.1}\" text-anchor=\"{anchor}\" font-size=\"12\">{}</text>",
            if minor { " minor" } else { "" },
            base + 16.0,
            esc(&words::day_short(r.trend[i].start_ms))
        );
    }
    s.push_str("</svg>\n");

    // Every figure of the chart, for a phone that cannot hover.
    let _ = write!(
        s,
        "<details class=\"figures\" id=\"{id}-figures\"><summary>{} per {per}, figure by figure</summary>\
         <div class=\"scroll\"><table><tr><th>{per}</th>",
        esc(what)
    );
    for (_, label) in series {
        let _ = write!(s, "<th class=\"n\">{}</th>", esc(label));
    }
    s.push_str("<th class=\"n\">total</th></tr>\n");
    for p in &r.trend {
        let vs = values(p);
        let _ = write!(s, "<tr><td>{}</td>", esc(&words::day_short(p.start_ms)));
        for v in &vs {
            let _ = write!(s, "<td class=\"n\">{v}</td>");
        }
        let _ = writeln!(s, "<td class=\"n\">{}</td></tr>", vs.iter().map(|v| (*v).max(0)).sum::<i64>());
    }
    s.push_str("</table></div></details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gridlines_fall_on_round_figures() {
        assert_eq!(tick_step(0), 1);
        assert_eq!(tick_step(3), 1);
        assert_eq!(tick_step(17), 5);
        assert_eq!(tick_step(40), 10);
        assert_eq!(tick_step(85), 50);
    }

    #[test]
    fn the_axis_labels_the_first_and_last_columns_and_never_crowds_them() {
        let majors = |n| axis_labels(n).into_iter().filter(|(_, minor)| !minor).map(|(i, _)| i).collect::<Vec<_>>();
        assert_eq!(majors(31), [0, 9, 18, 30]);
        assert_eq!(majors(8), [0, 2, 4, 7]);
        assert_eq!(majors(1), [0]);
        let all: Vec<usize> = axis_labels(31).into_iter().map(|(i, _)| i).collect();
        assert_eq!(all, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30]);
        let all: Vec<usize> = axis_labels(8).into_iter().map(|(i, _)| i).collect();
        assert_eq!(all, [0, 1, 2, 3, 4, 5, 6, 7], "every day on wide screens");
    }

    #[test]
    fn whole_days_read_as_days_with_the_exclusive_end_left_out() {
        // 2026-12-07 and 2027-01-07, midnight UTC.
        let (since, until) = (1_796_601_600_000, 1_796_601_600_000 + 31 * DAY_MS);
        assert_eq!(period(since, until), "7 December 2026 – 6 January 2027");
        assert_eq!(period(since, since + DAY_MS), "7 December 2026");
        assert_eq!(period(since + 60_000, until), "7 December 2026, 00:01 UTC – 7 January 2027, 00:00 UTC");
    }
}

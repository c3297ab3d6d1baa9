//! `--format html`: one self-contained page (inline CSS and SVG, no script,
//! no external assets) that reads on a phone: the headline figures as
//! tiles, the trend as stacked column charts, the tables, the content gaps.

use std::fmt::Write as _;

use super::figures::{Report, TrendPoint};
use super::units::{date, duration, maybe_duration, percent};
use crate::export::formats::html_escape as esc;
use crate::store::report::Spread;

/// What only the report adds to the pages' shared look
/// ([`crate::export::formats::PAGE_STYLE`]): tiles, charts, content gaps.
pub const STYLE: &str = "\
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px}
.tile{background:#fff;border:1px solid #ddd;border-radius:10px;padding:10px 12px}
.tile .v{font-size:26px;font-weight:600}.tile .l{font-size:12px;color:#555}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}
svg.chart{width:100%;height:auto;display:block;margin:4px 0}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.gap{border-top:1px solid #eee;padding:8px 0}.gap:first-of-type{border-top:0}
.gap h3{font-size:15px;margin:0 0 4px}.gap ul{margin:4px 0;padding-left:20px}
.gap .answer{background:#f1f8e9;border-radius:8px;padding:6px 10px;margin:4px 0;white-space:pre-wrap}
@media (max-width:600px){.tile .v{font-size:22px}}
";

const AUTO: &str = "#2e7d32";
const CONTACT: &str = "#81c784";
const MODERATOR: &str = "#7e57c2";
const OTHER: &str = "#cfd8dc";
const ESCALATED: &str = "#e0a800";

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>tribute-assistant automation report</title>\n<style>\n{}{STYLE}</style></head><body>\n\
         <header><h1>Automation report</h1><p>{} → {} (UTC) · per {} · generated {}</p></header>\n<main>\n",
        crate::export::formats::PAGE_STYLE,
        esc(date(&r.range.since)),
        esc(date(&r.range.until)),
        esc(r.range.bucket),
        esc(&r.range.generated_at)
    );
    tiles(&mut s, r);
    orders(&mut s, r);
    questions(&mut s, r);
    moderators(&mut s, r);
    gaps(&mut s, r);
    s.push_str("</main>\n</body></html>\n");
    s
}

fn tiles(s: &mut String, r: &Report) {
    let (o, q) = (&r.orders, &r.questions);
    s.push_str("<div class=\"tiles\" id=\"headline\">\n");
    for (id, value, label) in [
        ("paid", o.paid.to_string(), "orders paid"),
        ("completed", o.completed.to_string(), "completed"),
        ("automation", percent(o.automation_rate), "completed automatically"),
        ("resolution", percent(q.resolution_rate), "questions resolved by the agent"),
        ("escalated", q.escalated.to_string(), "questions escalated"),
        ("open-cases", r.moderators.open_cases_by_age.total().to_string(), "cases open now"),
    ] {
        let _ = writeln!(
            s,
            "<div class=\"tile\" id=\"tile-{id}\"><div class=\"v\">{}</div><div class=\"l\">{label}</div></div>",
            esc(&value)
        );
    }
    s.push_str("</div>\n");
}

fn row(s: &mut String, key: &str, label: &str, value: impl std::fmt::Display, note: &str) {
    let _ = writeln!(
        s,
        "<tr data-key=\"{key}\"><td>{label}</td><td class=\"n\">{}</td><td>{}</td></tr>",
        esc(&value.to_string()),
        esc(note)
    );
}

fn spread_row(s: &mut String, key: &str, label: &str, sp: &Spread) {
    let note = format!("p90 {} · max {} · {} measured", maybe_duration(sp.p90), maybe_duration(sp.max), sp.count);
    row(s, key, &format!("{label} (p50)"), maybe_duration(sp.p50), &note);
}

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
    column_chart(s, "trend-orders", r, &series, |p| {
        vec![p.completed_automatically, p.completed_after_contact, p.completed_by_moderator, p.paid - p.completed]
    });
    s.push_str("<div class=\"scroll\"><table>\n");
    row(s, "paid", "paid", o.paid, "received in the range");
    row(s, "completed", "completed", o.completed, "Send pressed");
    row(s, "completed_automatically", "— automatically", o.completed_automatically, &percent(o.automation_rate));
    row(s, "completed_after_contact", "— after contact with the customer", o.completed_after_contact, "");
    row(s, "completed_by_moderator", "— by a moderator", o.completed_by_moderator, "");
    row(s, "refunded", "refunded", o.refunded, "");
    row(s, "failed", "failed", o.failed, "");
    let oldest = o.oldest_open_age_secs.map(|a| format!("oldest {}", duration(a * 1000))).unwrap_or_default();
    row(s, "open", "still open", o.open, &oldest);
    row(s, "open_escalated", "— with a moderator", o.open_escalated, "");
    row(s, "open_needs_customer", "— waiting for the customer", o.open_needs_customer, "");
    spread_row(s, "payment_to_send", "payment → Send", &o.payment_to_send_ms);
    s.push_str("</table></div></section>\n");
}

fn questions(s: &mut String, r: &Report) {
    let q = &r.questions;
    s.push_str("<section id=\"questions\"><h2>Customer questions</h2>\n");
    let series = [(AUTO, "resolved by the agent"), (ESCALATED, "escalated"), (OTHER, "asked again / pending")];
    legend(s, &series);
    column_chart(s, "trend-questions", r, &series, |p| {
        vec![p.resolved_by_agent, p.escalated, p.questions - p.resolved_by_agent - p.escalated]
    });
    s.push_str("<div class=\"scroll\"><table>\n");
    row(s, "asked", "asked", q.asked, "");
    row(s, "resolved_by_agent", "resolved by the agent", q.resolved_by_agent, &percent(q.resolution_rate));
    row(s, "reopened", "answered, then asked again", q.reopened, "");
    row(s, "escalated", "escalated", q.escalated, "");
    for (reason, n) in &q.escalated_by_reason {
        row(s, &format!("reason-{reason}"), &format!("— {reason}"), n, "");
    }
    row(s, "pending", "answered, window still open", q.pending, "");
    row(s, "answered_by_moderator", "escalated, answered by a moderator", q.answered_by_moderator, "");
    spread_row(s, "first_answer", "time to first answer", &q.first_answer_ms);
    let per = q.messages_per_resolved_conversation.map_or_else(|| "—".to_owned(), |x| format!("{x:.1}"));
    row(
        s,
        "messages_per_resolved_conversation",
        "messages per resolved conversation",
        per,
        &format!("{} conversations", q.resolved_conversations),
    );
    s.push_str("</table></div></section>\n");
}

fn moderators(s: &mut String, r: &Report) {
    let m = &r.moderators;
    s.push_str("<section id=\"moderators\"><h2>Moderators</h2>\n<div class=\"scroll\"><table>\n");
    row(s, "cases_opened", "cases opened", m.cases_opened, "");
    for (reason, n) in &m.cases_opened_by_reason {
        row(s, &format!("case-reason-{reason}"), &format!("— {reason}"), n, "");
    }
    row(s, "cases_closed", "cases closed", m.cases_closed, "");
    spread_row(s, "first_action", "time to first moderator action", &m.first_action_ms);
    row(s, "cases_without_action", "cases without a moderator action", m.cases_without_action, "");
    let a = &m.open_cases_by_age;
    row(s, "open_cases", "open cases now", a.total(), "");
    for (key, label, n) in [
        ("under_1h", "— under 1 hour", a.under_1h),
        ("1h_to_24h", "— 1 to 24 hours", a.h1_to_24h),
        ("1d_to_7d", "— 1 to 7 days", a.d1_to_7d),
        ("over_7d", "— over 7 days", a.over_7d),
    ] {
        row(s, &format!("open-{key}"), label, n, "");
    }
    for x in &m.actions {
        let by: Vec<String> = x.by_action.iter().map(|(k, v)| format!("{k} {v}")).collect();
        row(
            s,
            &format!("moderator-{}", x.moderator_id),
            &format!("moderator {}", x.moderator_id),
            x.total,
            &by.join(", "),
        );
    }
    row(s, "refused", "refused (not a moderator)", m.refused, "");
    s.push_str("</table></div></section>\n");
}

fn gaps(s: &mut String, r: &Report) {
    let g = &r.content_gap_summary;
    let _ = writeln!(
        s,
        "<section id=\"content-gaps\"><h2>Content gaps</h2>\n<p class=\"muted\">{} escalated questions in {} groups, \
         largest first. Each group is a suggested FAQ entry; approve it in the moderator chat with the command shown.</p>",
        g.questions, g.groups
    );
    for gap in &r.content_gaps {
        let _ = writeln!(
            s,
            "<div class=\"gap\" id=\"gap-{id}\" data-size=\"{n}\"><h3>{id} · {n} question(s)</h3><ul>",
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
        if let Some(cmd) = &gap.approve {
            let _ = writeln!(s, "<p>Approve: <code>{}</code></p>", esc(cmd));
        }
        s.push_str("</div>\n");
    }
    s.push_str("</section>\n");
}

/// Stacked columns, one per trend bucket; `values` gives each bucket's
/// stack in the order of `series`. Each column carries a `<title>` (a
/// tooltip) with its figures.
fn column_chart(
    s: &mut String,
    id: &str,
    r: &Report,
    series: &[(&str, &str)],
    values: impl Fn(&TrendPoint) -> Vec<i64>,
) {
    const W: f64 = 640.0;
    const H: f64 = 180.0;
    const AXIS: f64 = 18.0;
    let n = r.trend.len().max(1) as f64;
    let max = r.trend.iter().map(|p| values(p).iter().map(|v| v.max(&0)).sum::<i64>()).max().unwrap_or(0).max(1) as f64;
    let slot = W / n;
    let width = (slot * 0.8).max(1.0);
    let _ = writeln!(
        s,
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {W} {}\" role=\"img\" aria-label=\"{id}\" data-points=\"{}\" \
         data-max=\"{max}\">",
        H + AXIS,
        r.trend.len()
    );
    let _ = writeln!(s, "<line x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#999\" stroke-width=\"1\"/>");
    let labels_every = (r.trend.len() / 8).max(1);
    for (i, p) in r.trend.iter().enumerate() {
        let x = i as f64 * slot + (slot - width) / 2.0;
        let vs = values(p);
        let title: Vec<String> = series.iter().zip(&vs).map(|((_, l), v)| format!("{l} {v}")).collect();
        let _ = write!(s, "<g class=\"col\"><title>{}: {}</title>", esc(date(&p.start)), esc(&title.join(", ")));
        let mut y = H;
        for ((color, _), v) in series.iter().zip(&vs) {
            let h = (*v).max(0) as f64 / max * (H - 4.0);
            if h > 0.0 {
                y -= h;
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" fill=\"{color}\" data-value=\"{v}\"/>"
                );
            }
        }
        s.push_str("</g>\n");
        if i % labels_every == 0 {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" fill=\"#555\">{}</text>",
                x,
                H + 13.0,
                esc(date(&p.start).get(5..).unwrap_or_default())
            );
        }
    }
    s.push_str("</svg>\n");
}

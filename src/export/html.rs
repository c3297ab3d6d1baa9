//! `--format html`: one self-contained page a reviewer reads on a phone or
//! a desk. Filters on top (each checkbox inside its label, so the two never
//! part), one card per conversation: how it stands in words, its orders
//! with their amounts, the chat as bubbles, the cases and what moderators
//! did. Codes are said in words ([`crate::report::words`]); times are in
//! the exporting machine's time zone, named once in the header, short on
//! each bubble, with a line for each new day.

use std::io::{self, Write};

use chrono::{DateTime, FixedOffset, Local, Offset};

use super::formats::{html_escape as e, ExportWriter, PAGE_STYLE};
use super::model::{ConversationExport, MessageExport, OrderExport, Outcome};
use crate::domain::{Author, Direction, Language};
use crate::report::words;

/// The time zone the page's times are in: the exporting machine's, as it
/// was when the export began. A time at another offset (the clocks changed
/// in between) carries its own.
#[derive(Debug, Clone, Copy)]
pub struct Zone {
    offset: FixedOffset,
}

impl Zone {
    /// The machine's zone now.
    pub fn local() -> Self {
        Self { offset: Local::now().offset().fix() }
    }

    /// "UTC" or "UTC+03:00".
    pub fn name(&self) -> String {
        name(self.offset)
    }

    fn at(&self, ms: i64) -> Option<DateTime<Local>> {
        DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&Local))
    }

    /// `" (UTC+02:00)"` when `t` is not at the page's offset.
    fn other_offset(&self, t: &DateTime<Local>) -> String {
        let offset = t.offset().fix();
        if offset == self.offset {
            String::new()
        } else {
            format!(" ({})", name(offset))
        }
    }

    /// "22:25" (a bubble; its day is on the line above it).
    pub fn time(&self, ms: i64) -> String {
        self.at(ms).map_or_else(|| ms.to_string(), |t| format!("{}{}", t.format("%H:%M"), self.other_offset(&t)))
    }

    /// "8 Dec 2026, 06:55".
    pub fn day_time(&self, ms: i64) -> String {
        self.at(ms)
            .map_or_else(|| ms.to_string(), |t| format!("{}{}", t.format("%-d %b %Y, %H:%M"), self.other_offset(&t)))
    }

    /// "Monday, 7 December 2026": the line above a day's first bubble.
    pub fn day(&self, ms: i64) -> String {
        self.at(ms).map_or_else(|| ms.to_string(), |t| t.format("%A, %-d %B %Y").to_string())
    }
}

fn name(offset: FixedOffset) -> String {
    if offset.local_minus_utc() == 0 {
        "UTC".to_owned()
    } else {
        let s = offset.local_minus_utc();
        format!("UTC{}{:02}:{:02}", if s < 0 { '-' } else { '+' }, s.abs() / 3600, s.abs() % 3600 / 60)
    }
}

pub struct Html {
    count: u64,
    zone: Zone,
}

impl Html {
    pub fn new(zone: Zone) -> Self {
        Self { count: 0, zone }
    }
}

const HTML_HEAD: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tribute-assistant conversation review</title>
<style>
"#;

/// What only the review export adds to [`PAGE_STYLE`]: the filter bar,
/// chat bubbles, chips, orders.
const HTML_STYLE: &str = r#"
header{position:sticky;top:0;z-index:1}
.filters{display:flex;flex-wrap:wrap;align-items:center;gap:4px 14px;margin-top:8px}
.filters label{display:inline-flex;align-items:center;gap:6px;white-space:nowrap;min-height:30px;font-size:14px}
.filters label.search{flex:1 1 100%}
.filters input[type=search]{flex:1;min-width:0;font-size:16px;padding:4px 8px}
.filters input[type=checkbox]{width:18px;height:18px;margin:0}
#shown{font-size:13px;color:#555}
section.conv.escalated{border-left:6px solid #e0a800}
section.conv.failed{border-left:6px solid #c62828}
section.conv h2{font-size:15px;margin:4px 0}
.chips{margin:2px 0 4px}
.tag{display:inline-block;font-size:12px;padding:1px 8px;border-radius:8px;background:#eee;margin:2px 4px 2px 0}
.tag.outcome{font-weight:600}
.tag.o-failed{background:#ffcdd2}.tag.o-with_moderator{background:#ffe08a}.tag.o-escalated{background:#ffe08a}
.tag.o-closed_by_moderator{background:#d1c4e9}.tag.o-completed,.tag.o-answered_by_agent{background:#c8e6c9}
.conv .meta{font-size:13px;color:#555}
.day{text-align:center;font-size:12px;color:#666;margin:10px 0 4px}
.msg{margin:6px 0;padding:6px 10px;border-radius:10px;max-width:80%;white-space:pre-wrap;overflow-wrap:anywhere}
.msg.in{background:#e3f2fd}.msg.out{background:#f1f8e9;margin-left:auto}.msg.internal{background:#fff8e1;font-style:italic;margin:6px auto}
.msg .meta{font-size:12px;color:#666;display:block;font-style:normal}
.msg.agent-escalated{outline:2px solid #e0a800}
.conf{font-weight:bold}.conf.low{color:#c62828}.conf.high{color:#2e7d32}
details{margin:6px 0}details summary{cursor:pointer;color:#1a5fb4}
.order{border-top:1px solid #eee;padding:6px 0;font-size:14px}.order:first-of-type{border-top:0}
.order .price{font-weight:600;white-space:nowrap}
.order ol{margin:4px 0;padding-left:20px;font-size:13px;color:#444}
.moderation ul{padding-left:20px;font-size:14px}
@media (max-width:600px){header{position:static}.msg{max-width:92%}}
"#;

const HTML_TAIL: &str = r#"</main>
<script>
(function(){
  var q=document.getElementById('q'), boxes=document.querySelectorAll('.filters input[type=checkbox]');
  var convs=document.querySelectorAll('section.conv'), shown=document.getElementById('shown');
  function apply(){
    var text=q.value.toLowerCase(), want=[], n=0;
    boxes.forEach(function(b){ if(b.checked) want.push(b.getAttribute('data-flag')); });
    convs.forEach(function(c){
      var flags=(c.getAttribute('data-flags')||'').split(' ');
      var ok=want.every(function(f){ return flags.indexOf(f)>=0; });
      if(ok && text) ok=c.textContent.toLowerCase().indexOf(text)>=0;
      c.hidden=!ok; if(ok) n++;
    });
    shown.textContent=n+' of '+convs.length+' shown';
  }
  q.addEventListener('input',apply); boxes.forEach(function(b){ b.addEventListener('change',apply); });
  apply();
})();
</script>
</body></html>
"#;

/// The filters: the `--only` classes, by what they mean.
const FILTERS: [(&str, &str); 4] = [
    ("escalated", "handed to a person"),
    ("answered-by-agent", "answered by the agent"),
    ("moderator", "a moderator took part"),
    ("failed", "an order failed"),
];

/// How a conversation stands, in words.
fn outcome(o: Outcome, cases: usize) -> &'static str {
    match o {
        Outcome::Failed => "An order failed",
        Outcome::WithModerator => "A case is open: with a moderator",
        Outcome::ClosedByModerator if cases == 1 => "Its case is closed",
        Outcome::ClosedByModerator => "Its cases are closed",
        Outcome::Escalated => "Handed to a person, no case yet",
        Outcome::Completed => "Orders completed",
        Outcome::AnsweredByAgent => "Answered by the agent",
        Outcome::Open => "Still open",
    }
}

/// What the flags add to the outcome, leaving out what it already says
/// (a conversation whose case is closed was handed to a person; one whose
/// order failed is flagged failed): chips never repeat or contradict it.
fn extra_chips(c: &ConversationExport) -> Vec<&'static str> {
    let mut chips = Vec::new();
    let person = matches!(c.outcome, Outcome::WithModerator | Outcome::ClosedByModerator | Outcome::Escalated);
    if c.flags.escalated && !person {
        chips.push("handed to a person");
    }
    if c.flags.moderator && !matches!(c.outcome, Outcome::WithModerator | Outcome::ClosedByModerator) {
        chips.push("a moderator wrote");
    }
    if c.flags.answered_by_agent && c.outcome != Outcome::AnsweredByAgent {
        chips.push("the agent answered");
    }
    chips
}

fn language(l: Language) -> &'static str {
    match l {
        Language::Ru => "in Russian",
        Language::En => "in English",
    }
}

fn author(m: &crate::store::ConversationMessage) -> String {
    match (m.author, m.direction) {
        (Author::Moderator, Direction::Internal) => "Moderator · internal note, not sent".to_owned(),
        (Author::Customer, _) => "Customer".to_owned(),
        (Author::Assistant, _) => "Assistant (automatic message)".to_owned(),
        (Author::Agent, _) => "Agent (AI)".to_owned(),
        (Author::Moderator, _) => "Moderator".to_owned(),
    }
}

/// The agent's reasons for handing a question over, in words (their
/// details are left out: they may quote the customer).
fn reasons(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|r| r.get("code")?.as_str().map(words::reason)).collect())
        .unwrap_or_default()
}

impl ExportWriter for Html {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        for part in [HTML_HEAD, PAGE_STYLE, HTML_STYLE] {
            out.write_all(part.as_bytes())?;
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut s = format!(
            "</style></head><body>\n<header>\n<h1>Conversation review</h1>\n<p id=\"zone\">Times are {zone}, \
             the time zone of the machine that exported this on {made}.</p>\n<div class=\"filters\">\n\
             <label class=\"search\">Search <input id=\"q\" type=\"search\" placeholder=\"text, customer id, order\"></label>\n",
            zone = e(&self.zone.name()),
            made = e(&self.zone.day_time(now)),
        );
        for (flag, label) in FILTERS {
            s.push_str(&format!(
                "<label><input type=\"checkbox\" data-flag=\"{flag}\"><span>{}</span></label>\n",
                e(label)
            ));
        }
        s.push_str("<span id=\"shown\"></span>\n</div>\n</header>\n<main id=\"conversations\">\n");
        out.write_all(s.as_bytes())
    }

    fn conversation(&mut self, out: &mut dyn Write, c: &ConversationExport) -> io::Result<()> {
        self.count += 1;
        let z = &self.zone;
        let mut flags = Vec::new();
        if c.flags.escalated {
            flags.push("escalated");
        }
        if c.flags.answered_by_agent {
            flags.push("answered-by-agent");
        }
        if c.flags.moderator {
            flags.push("moderator");
        }
        if c.flags.failed {
            flags.push("failed");
        }
        let class = match (c.flags.failed, c.flags.escalated) {
            (true, _) => "conv failed",
            (false, true) => "conv escalated",
            _ => "conv",
        };
        let mut s = format!(
            "<section class=\"{class}\" id=\"conv-{id}\" data-id=\"{id}\" data-customer=\"{cust}\" data-outcome=\"{code}\" data-flags=\"{flags}\">\n\
             <h2>Conversation {id} · customer {cust} · {name}</h2>\n<div class=\"chips\"><span class=\"tag outcome o-{code}\">{outcome}</span>",
            id = c.id,
            cust = c.customer.telegram_id,
            name = e(&c.customer.name),
            code = c.outcome.as_str(),
            outcome = outcome(c.outcome, c.cases.len()),
            flags = flags.join(" "),
        );
        for chip in extra_chips(c) {
            s.push_str(&format!("<span class=\"tag\">{chip}</span>"));
        }
        s.push_str(&format!(
            "</div>\n<div class=\"meta\">{} – {} · {} · now: {}</div>\n",
            e(&z.day_time(c.created_at)),
            e(&z.day_time(c.updated_at)),
            language(c.language),
            e(&words::dialogue_state(c.state))
        ));
        if !c.orders.is_empty() {
            s.push_str(&format!(
                "<details class=\"orders\"><summary>{}</summary>\n",
                e(&words::count(c.orders.len() as i64, "order", "orders"))
            ));
            for OrderExport { order: o, history, .. } in &c.orders {
                s.push_str(&format!(
                    "<div class=\"order\" data-state=\"{code}\"><div><b>{r}</b> · {p} · <span class=\"price\">{price}</span></div>\
                     <div class=\"muted\">{state}</div><ol>",
                    code = e(o.state.as_str()),
                    r = e(o.order_ref.as_str()),
                    p = e(&o.product),
                    price = e(&o.price.to_string()),
                    state = e(&words::order_state(o.state.as_str())),
                ));
                for h in history {
                    let note = if h.note.is_empty() { String::new() } else { format!(": {}", e(&h.note)) };
                    s.push_str(&format!(
                        "<li>{} · {}{note}</li>",
                        e(&z.day_time(h.at)),
                        e(&words::order_state(&h.to_state))
                    ));
                }
                s.push_str("</ol></div>\n");
            }
            s.push_str("</details>\n");
        }
        s.push_str("<div class=\"transcript\">\n");
        let mut day = String::new();
        for MessageExport { message: m, agent_turn_id, .. } in &c.messages {
            let today = z.day(m.at);
            if today != day {
                s.push_str(&format!("<div class=\"day\">{}</div>\n", e(&today)));
                day = today;
            }
            let turn = agent_turn_id.and_then(|id| c.agent_turns.iter().find(|t| t.id == id));
            let escalated = turn.is_some_and(|t| t.escalated);
            let mut meta = format!("{} · {}", e(&z.time(m.at)), e(&author(m)));
            if let Some(t) = turn {
                if let Some(x) = t.confidence {
                    let level = if x < 0.5 {
                        "low"
                    } else if x >= 0.8 {
                        "high"
                    } else {
                        "mid"
                    };
                    meta.push_str(&format!(" · <span class=\"conf {level}\">confidence {:.0}%</span>", x * 100.0));
                }
                if escalated {
                    let why = reasons(&t.reasons);
                    let why = if why.is_empty() { String::new() } else { format!(": {}", e(&why.join("; "))) };
                    meta.push_str(&format!(" · <span class=\"tag escalated\">handed to a person</span>{why}"));
                }
            }
            s.push_str(&format!(
                "<div class=\"msg {dir} author-{author}{esc}\" data-message-id=\"{id}\"><span class=\"meta\">{meta}</span>{text}</div>\n",
                dir = e(m.direction.as_str()),
                author = e(m.author.as_str()),
                esc = if escalated { " agent-escalated" } else { "" },
                id = m.id,
                text = e(&m.text),
            ));
        }
        s.push_str("</div>\n");
        if !c.cases.is_empty() || !c.moderator_actions.is_empty() {
            s.push_str("<details class=\"moderation\" open><summary>Cases and what moderators did</summary><ul>\n");
            for k in &c.cases {
                let status = match (k.status, k.outcome.as_deref()) {
                    (crate::store::CaseStatus::Open, _) => "open, with a moderator".to_owned(),
                    (_, Some(o)) if !o.is_empty() => format!("closed: {}", e(o)),
                    _ => "closed".to_owned(),
                };
                s.push_str(&format!(
                    "<li class=\"case\">Case {} · {}{} — {status}</li>\n",
                    e(&k.short_id),
                    e(&words::reason(k.reason.as_str())),
                    k.order_ref.as_ref().map(|r| format!(" · order {}", e(r.as_str()))).unwrap_or_default(),
                ));
            }
            for a in &c.moderator_actions {
                let detail = if a.detail.is_empty() || a.action == "done" {
                    String::new()
                } else {
                    format!(": {}", e(&a.detail))
                };
                s.push_str(&format!(
                    "<li class=\"action\">{} · moderator {} {}{detail}{}</li>\n",
                    e(&z.day_time(a.at)),
                    a.moderator_id,
                    e(&words::moderator_action(&a.action)),
                    if a.allowed { "" } else { " (refused)" },
                ));
            }
            s.push_str("</ul></details>\n");
        }
        s.push_str("</section>\n");
        out.write_all(s.as_bytes())
    }

    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.count == 0 {
            out.write_all(b"<p class=\"empty\">No conversations match.</p>\n")?;
        }
        out.write_all(HTML_TAIL.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_named_once() {
        assert_eq!(name(FixedOffset::east_opt(0).unwrap()), "UTC");
        assert_eq!(name(FixedOffset::east_opt(3 * 3600).unwrap()), "UTC+03:00");
        assert_eq!(name(FixedOffset::west_opt(3 * 3600 + 1800).unwrap()), "UTC-03:30");
    }
}

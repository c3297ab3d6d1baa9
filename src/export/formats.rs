//! The three output formats, each written one conversation at a time so
//! nothing but the current conversation is held in memory.

use std::io::{self, Write};

use super::model::{rfc3339, ConversationExport, MessageExport, OrderExport};

/// A time as a reviewer reads it: local to the machine that exports, to the
/// second, with its UTC offset (`2026-12-05 07:14:03 UTC+03:00`).
pub fn readable(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S UTC%:z").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One conversation per line, the schema in docs/export.md.
    Jsonl,
    /// One row per message (RFC 4180), for spreadsheets.
    Csv,
    /// One self-contained page: filters and chat transcripts.
    Html,
}

/// Writes conversations in one format.
pub trait ExportWriter {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()>;
    fn conversation(&mut self, out: &mut dyn Write, c: &ConversationExport) -> io::Result<()>;
    fn finish(&mut self, out: &mut dyn Write) -> io::Result<()>;
}

pub fn writer(format: Format) -> Box<dyn ExportWriter> {
    match format {
        Format::Jsonl => Box::new(Jsonl),
        Format::Csv => Box::new(Csv),
        Format::Html => Box::new(Html { count: 0 }),
    }
}

pub struct Jsonl;

impl ExportWriter for Jsonl {
    fn begin(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn conversation(&mut self, out: &mut dyn Write, c: &ConversationExport) -> io::Result<()> {
        serde_json::to_writer(&mut *out, c)?;
        out.write_all(b"\n")
    }

    fn finish(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

pub const CSV_HEADER: [&str; 11] = [
    "conversation_id",
    "customer_telegram_id",
    "customer_name",
    "message_id",
    "at",
    "direction",
    "author",
    "text",
    "orders",
    "agent_confidence",
    "agent_escalated",
];

pub struct Csv;

/// RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled.
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn csv_row(out: &mut dyn Write, fields: &[&str]) -> io::Result<()> {
    let line: Vec<_> = fields.iter().map(|f| csv_field(f)).collect();
    out.write_all(line.join(",").as_bytes())?;
    out.write_all(b"\r\n")
}

impl ExportWriter for Csv {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        csv_row(out, &CSV_HEADER)
    }

    fn conversation(&mut self, out: &mut dyn Write, c: &ConversationExport) -> io::Result<()> {
        let conv = c.id.to_string();
        let customer = c.customer.telegram_id.to_string();
        for MessageExport { message: m, order_refs, agent_turn_id } in &c.messages {
            let turn = agent_turn_id.and_then(|id| c.agent_turns.iter().find(|t| t.id == id));
            let confidence = turn.and_then(|t| t.confidence).map(|x| format!("{x:.2}")).unwrap_or_default();
            let escalated = turn.map(|t| t.escalated.to_string()).unwrap_or_default();
            let id = m.id.to_string();
            let at = rfc3339(m.at);
            let orders = order_refs.join(" ");
            csv_row(
                out,
                &[
                    &conv,
                    &customer,
                    &c.customer.name,
                    &id,
                    &at,
                    m.direction.as_str(),
                    m.author.as_str(),
                    &m.text,
                    &orders,
                    &confidence,
                    &escalated,
                ],
            )?;
        }
        Ok(())
    }

    fn finish(&mut self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

pub struct Html {
    count: u64,
}

const HTML_HEAD: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tribute-assistant conversation review</title>
<style>
"#;

/// The look both of our pages share (this review export and the automation
/// report): fonts, header, a centred column of white cards, tables, and a
/// narrower layout on phones.
pub const PAGE_STYLE: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f4f5f7;color:#1d1d1f}
header{background:#fff;border-bottom:1px solid #ddd;padding:12px 16px}
header h1{font-size:20px;margin:0}header p{margin:4px 0 0;color:#555;font-size:13px}
main{padding:12px;max-width:960px;margin:auto}
section{background:#fff;border:1px solid #ddd;border-radius:10px;margin:0 0 14px;padding:10px 14px}
section h2{font-size:16px;margin:4px 0 10px}
table{border-collapse:collapse;width:100%;font-size:14px}
td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
code{background:#eef;padding:1px 5px;border-radius:4px}
.muted{color:#666;font-size:13px}
@media (max-width:600px){main{padding:8px}td,th{padding:3px 4px;font-size:13px}}
";

/// What only the review export adds: the filter bar, chat bubbles, tags.
const HTML_STYLE: &str = r#"
header{position:sticky;top:0;z-index:1}
header label{margin-right:12px}
section.conv.escalated{border-left:6px solid #e0a800}
section.conv.failed{border-left:6px solid #c62828}
section.conv h2{font-size:15px;margin:4px 0}
.tag{display:inline-block;font-size:11px;padding:1px 6px;border-radius:8px;background:#eee;margin-left:4px}
.tag.escalated{background:#ffe08a}.tag.failed{background:#ffcdd2}.tag.moderator{background:#d1c4e9}.tag.agent{background:#c8e6c9}
.msg{margin:6px 0;padding:6px 10px;border-radius:10px;max-width:75%;white-space:pre-wrap;word-wrap:break-word}
.msg.in{background:#e3f2fd}.msg.out{background:#f1f8e9;margin-left:auto}.msg.internal{background:#fff8e1;font-style:italic;margin:auto}
.msg .meta{font-size:11px;color:#666;display:block}
.msg.agent-escalated{outline:2px solid #e0a800}
.conf{font-weight:bold}.conf.low{color:#c62828}.conf.high{color:#2e7d32}
details{margin:4px 0}
.conv table{font-size:12px;width:auto}.conv td,.conv th{border:1px solid #ddd;padding:2px 6px}
"#;

const HTML_BODY_START: &str = r#"</style></head><body>
<header>
<label>Search <input id="q" type="search" placeholder="text, customer id, order"></label>
<label><input type="checkbox" data-flag="escalated"> escalated</label>
<label><input type="checkbox" data-flag="answered-by-agent"> answered by agent</label>
<label><input type="checkbox" data-flag="moderator"> moderator</label>
<label><input type="checkbox" data-flag="failed"> failed</label>
<span id="shown"></span>
</header>
<main id="conversations">
"#;

const HTML_TAIL: &str = r#"</main>
<script>
(function(){
  var q=document.getElementById('q'), boxes=document.querySelectorAll('header input[type=checkbox]');
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

impl ExportWriter for Html {
    fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        for part in [HTML_HEAD, PAGE_STYLE, HTML_STYLE, HTML_BODY_START] {
            out.write_all(part.as_bytes())?;
        }
        Ok(())
    }

    fn conversation(&mut self, out: &mut dyn Write, c: &ConversationExport) -> io::Result<()> {
        self.count += 1;
        let e = html_escape;
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
            "<section class=\"{class}\" id=\"conv-{id}\" data-id=\"{id}\" data-customer=\"{cust}\" data-outcome=\"{outcome}\" data-flags=\"{flags}\">\n<h2>Conversation {id} · customer {cust} ({name}) <span class=\"tag outcome\">{outcome}</span>",
            id = c.id,
            cust = c.customer.telegram_id,
            name = e(&c.customer.name),
            outcome = c.outcome.as_str(),
            flags = flags.join(" "),
        );
        for f in &flags {
            let tag_class = if *f == "answered-by-agent" { "agent" } else { f };
            s.push_str(&format!("<span class=\"tag {tag_class}\">{f}</span>"));
        }
        s.push_str(&format!(
            "</h2>\n<div class=\"meta\">{} — {} · language {} · state {}</div>\n",
            e(&readable(c.created_at)),
            e(&readable(c.updated_at)),
            e(c.language.as_str()),
            e(c.state)
        ));
        if !c.orders.is_empty() {
            s.push_str("<details class=\"orders\"><summary>Orders</summary><table><tr><th>Order</th><th>State</th><th>Product</th><th>Amount</th><th>History</th></tr>\n");
            for OrderExport { order: o, history, .. } in &c.orders {
                let history: Vec<String> = history
                    .iter()
                    .map(|h| format!("{} → {} ({})", e(&readable(h.at)), e(&h.to_state), e(&h.note)))
                    .collect();
                s.push_str(&format!(
                    "<tr class=\"order\" data-state=\"{st}\"><td>{r}</td><td>{st}</td><td>{p}</td><td>{a} {cur}</td><td>{h}</td></tr>\n",
                    r = e(o.order_ref.as_str()),
                    st = e(o.state.as_str()),
                    p = e(&o.product),
                    a = o.price.amount_minor(),
                    cur = e(o.price.currency().code()),
                    h = history.join("<br>"),
                ));
            }
            s.push_str("</table></details>\n");
        }
        s.push_str("<div class=\"transcript\">\n");
        for MessageExport { message: m, agent_turn_id, .. } in &c.messages {
            let turn = agent_turn_id.and_then(|id| c.agent_turns.iter().find(|t| t.id == id));
            let escalated = turn.is_some_and(|t| t.escalated);
            let mut meta = format!("{} · {} · {}", e(&readable(m.at)), e(m.author.as_str()), e(m.direction.as_str()));
            if let Some(t) = turn {
                if let Some(x) = t.confidence {
                    let level = if x < 0.5 {
                        "low"
                    } else if x >= 0.8 {
                        "high"
                    } else {
                        "mid"
                    };
                    meta.push_str(&format!(" · <span class=\"conf {level}\">confidence {x:.2}</span>"));
                }
                if escalated {
                    meta.push_str(" · <span class=\"tag escalated\">escalated</span>");
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
            s.push_str("<details class=\"moderation\" open><summary>Cases and moderator actions</summary><ul>\n");
            for k in &c.cases {
                s.push_str(&format!(
                    "<li class=\"case\">Case {} ({}) — {} · {}{}</li>\n",
                    e(&k.short_id),
                    e(&k.reason),
                    e(k.status.as_str()),
                    e(k.outcome.as_deref().unwrap_or("—")),
                    k.order_ref.as_ref().map(|r| format!(" · order {}", e(r.as_str()))).unwrap_or_default(),
                ));
            }
            for a in &c.moderator_actions {
                s.push_str(&format!(
                    "<li class=\"action\">{} · moderator {} · {} {}{}</li>\n",
                    e(&readable(a.at)),
                    a.moderator_id,
                    e(&a.action),
                    e(&a.detail),
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

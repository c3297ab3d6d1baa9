//! The three output formats, each written one conversation at a time so
//! nothing but the current conversation is held in memory.

use std::io::{self, Write};

use super::html::{Html, Zone};
use super::model::{rfc3339, ConversationExport, MessageExport};

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
        Format::Html => Box::new(Html::new(Zone::local())),
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

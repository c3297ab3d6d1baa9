//! Splitting source documents into chunks: one per Markdown section, windows
//! of paragraphs for plain text, one per line for JSONL question/answer
//! pairs. A chunk is the unit that is embedded, stored and returned by
//! search, so a section should read as a complete answer on its own.

use serde::Deserialize;

use super::{ChunkKind, KnowledgeError};
use crate::domain::Language;

/// Limits for splitting long sections; measured in characters, not bytes,
/// so Russian text gets the same room as English.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    pub max_chars: usize,
    /// Characters repeated from the end of one piece at the start of the
    /// next, so a fact that straddles the cut is found in both.
    pub overlap_chars: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        Self { max_chars: 1500, overlap_chars: 200 }
    }
}

/// A piece of a source, before redaction and indexing.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The question the chunk answers: the heading path (or the file name).
    pub title: String,
    /// Other ways customers ask the same question (`Q:` / `В:` lines under
    /// the heading): indexed with the title, not shown as the answer.
    pub phrasings: Vec<String>,
    pub text: String,
    /// A ready answer: the body of a whole FAQ section, or the answer of a pair.
    pub answer: Option<String>,
    pub kind: ChunkKind,
    pub language: Option<String>,
}

impl Chunk {
    /// The text that lexical and dense vectors are computed from.
    pub fn search_text(&self) -> String {
        search_text(&self.question_text(), &self.text, self.answer.as_deref())
    }

    /// The title and the phrasings, one per line.
    pub fn question_text(&self) -> String {
        question_text(&self.title, &self.phrasings)
    }
}

/// A title and its phrasings, one per line: what a chunk is asked by.
pub fn question_text(title: &str, phrasings: &[String]) -> String {
    let mut s = title.to_owned();
    for p in phrasings {
        s.push('\n');
        s.push_str(p);
    }
    s
}

/// The question(s), the text and (when it differs) the answer, one per line:
/// what a chunk is indexed by, and what search re-reads to calibrate its confidence.
pub fn search_text(questions: &str, text: &str, answer: Option<&str>) -> String {
    let mut s = String::with_capacity(questions.len() + text.len() + 2);
    s.push_str(questions);
    s.push('\n');
    s.push_str(text);
    if let Some(a) = answer {
        if a != text {
            s.push('\n');
            s.push_str(a);
        }
    }
    s
}

/// Chunks a file by its extension: `.md`/`.markdown`, `.jsonl`, anything else as plain text.
pub fn chunk_file(name: &str, text: &str, limits: ChunkLimits) -> Result<Vec<Chunk>, KnowledgeError> {
    let lower = name.to_lowercase();
    if lower.ends_with(".jsonl") {
        chunk_jsonl(name, text)
    } else if lower.ends_with(".md") || lower.ends_with(".markdown") {
        Ok(chunk_markdown(name, text, limits))
    } else {
        Ok(chunk_plain(name, text, limits))
    }
}

/// One chunk per section under a heading. The title is the heading path
/// below the document title (`Payment › Paying from abroad`), so a section
/// is found by words of its parents too.
pub fn chunk_markdown(name: &str, text: &str, limits: ChunkLimits) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut in_fence = false;
    let flush = |path: &[(usize, String)], body: &mut String, out: &mut Vec<Chunk>| {
        let (phrasings, text) = split_phrasings(body);
        if !text.is_empty() {
            let title = section_title(name, path);
            push_split(out, &title, &phrasings, text, limits);
        }
        body.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if let Some((level, heading)) = (!in_fence).then(|| heading(line)).flatten() {
            flush(&path, &mut body, &mut out);
            path.retain(|(l, _)| *l < level);
            path.push((level, heading.to_owned()));
            continue;
        }
        body.push_str(line);
        body.push('\n');
    }
    flush(&path, &mut body, &mut out);
    out
}

/// The `Q:` / `В:` lines at the top of a section body (blank lines between
/// them allowed) and the rest of the body, trimmed. Only the top: a `Q:`
/// further down is part of the answer.
fn split_phrasings(body: &str) -> (Vec<String>, &str) {
    let mut phrasings = Vec::new();
    let mut rest = body;
    loop {
        let trimmed = rest.trim_start();
        let line_end = trimmed.find('\n').unwrap_or(trimmed.len());
        let line = trimmed[..line_end].trim();
        let phrasing = ["Q:", "q:", "В:", "в:"].iter().find_map(|p| line.strip_prefix(p)).map(str::trim);
        match phrasing {
            Some(p) => {
                if !p.is_empty() {
                    phrasings.push(p.to_owned());
                }
                rest = &trimmed[line_end..];
            }
            None => return (phrasings, rest.trim()),
        }
    }
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
        let h = line[hashes..].trim().trim_end_matches('#').trim();
        (!h.is_empty()).then_some((hashes, h))
    } else {
        None
    }
}

fn section_title(name: &str, path: &[(usize, String)]) -> String {
    // A single top-level `# Title` is the document's name: keep it only when
    // the section has no heading of its own.
    let parts: Vec<&str> = match path {
        [] => vec![name],
        [(1, only)] => vec![only.as_str()],
        [(1, _), rest @ ..] => rest.iter().map(|(_, h)| h.as_str()).collect(),
        all => all.iter().map(|(_, h)| h.as_str()).collect(),
    };
    parts.join(" › ")
}

/// Paragraph windows for plain text, titled by the file name.
pub fn chunk_plain(name: &str, text: &str, limits: ChunkLimits) -> Vec<Chunk> {
    let mut out = Vec::new();
    let text = text.trim();
    if !text.is_empty() {
        push_split(&mut out, name, &[], text, limits);
    }
    out
}

fn push_split(out: &mut Vec<Chunk>, title: &str, phrasings: &[String], text: &str, limits: ChunkLimits) {
    let pieces = split_with_overlap(text, limits);
    let whole = pieces.len() == 1;
    for piece in pieces {
        let language = Language::detect(&format!("{title} {piece}")).map(|l| l.as_str().to_owned());
        out.push(Chunk {
            title: title.to_owned(),
            phrasings: phrasings.to_vec(),
            answer: whole.then(|| piece.clone()),
            text: piece,
            kind: ChunkKind::Doc,
            language,
        });
    }
}

/// Splits at paragraph, then sentence, then word boundaries so that each
/// piece has at most `max_chars` characters; consecutive pieces share about
/// `overlap_chars` characters.
pub fn split_with_overlap(text: &str, limits: ChunkLimits) -> Vec<String> {
    let max = limits.max_chars.max(50);
    let overlap = limits.overlap_chars.min(max / 2);
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return vec![text.to_owned()];
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let hard_end = (start + max).min(chars.len());
        let end = if hard_end == chars.len() { hard_end } else { cut_point(&chars, start, hard_end) };
        let piece: String = chars[start..end].iter().collect();
        pieces.push(piece.trim().to_owned());
        if end == chars.len() {
            break;
        }
        // Next piece starts `overlap` characters back, at a word boundary.
        let mut next = end.saturating_sub(overlap).max(start + 1);
        while next < end && !chars[next - 1].is_whitespace() {
            next += 1;
        }
        start = next;
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

fn cut_point(chars: &[char], start: usize, hard_end: usize) -> usize {
    let min = start + (hard_end - start) / 2;
    let window = &chars[min..hard_end];
    let find_last = |pred: &dyn Fn(usize) -> bool| (0..window.len()).rev().find(|&i| pred(i)).map(|i| min + i + 1);
    find_last(&|i| window[i] == '\n' && i > 0 && window[i - 1] == '\n')
        .or_else(|| find_last(&|i| matches!(window[i], '.' | '!' | '?' | '\n')))
        .or_else(|| find_last(&|i| window[i].is_whitespace()))
        .unwrap_or(hard_end)
}

#[derive(Deserialize)]
struct JsonlPair {
    question: String,
    answer: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

/// One chunk per line `{"question": …, "answer": …, "language"?: …, "title"?: …}`;
/// blank lines are skipped, a malformed line is an error naming file and line.
pub fn chunk_jsonl(name: &str, text: &str) -> Result<Vec<Chunk>, KnowledgeError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let pair: JsonlPair = serde_json::from_str(line).map_err(|e| KnowledgeError::BadSource {
            source_name: format!("{name}:{}", i + 1),
            reason: format!("expected {{\"question\": …, \"answer\": …}}: {e}"),
        })?;
        if pair.question.trim().is_empty() || pair.answer.trim().is_empty() {
            return Err(KnowledgeError::BadSource {
                source_name: format!("{name}:{}", i + 1),
                reason: "question and answer must not be empty".into(),
            });
        }
        let language = pair
            .language
            .or_else(|| Language::detect(&format!("{} {}", pair.question, pair.answer)).map(|l| l.as_str().to_owned()));
        out.push(Chunk {
            title: pair.title.unwrap_or_else(|| pair.question.trim().to_owned()),
            phrasings: vec![],
            text: pair.question.trim().to_owned(),
            answer: Some(pair.answer.trim().to_owned()),
            kind: ChunkKind::Doc,
            language,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_sections_get_heading_paths_and_answers() {
        let md = "# FAQ\n\nIntro text.\n\n## Payment\n\nPay by card.\n\n### Abroad\n\nUse any card.\n\n## Refunds\n\nWithin 14 days.\n```\n# not a heading\n```\n";
        let chunks = chunk_markdown("faq.md", md, ChunkLimits::default());
        let titles: Vec<&str> = chunks.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(titles, ["FAQ", "Payment", "Payment › Abroad", "Refunds"]);
        assert_eq!(chunks[1].answer.as_deref(), Some("Pay by card."));
        assert!(chunks[3].text.contains("# not a heading"));
        assert_eq!(chunks[1].language.as_deref(), Some("en"));
    }

    #[test]
    fn phrasings_under_a_heading_are_questions_not_answer() {
        let md = "# How do I pay?\nQ: how to buy diamonds\n\nq: top up\nВ: как купить алмазы\n\nPay by card.\nQ: not a phrasing\n";
        let chunks = chunk_markdown("pay.md", md, ChunkLimits::default());
        assert_eq!(chunks.len(), 1);
        let c = &chunks[0];
        assert_eq!(c.title, "How do I pay?");
        assert_eq!(c.phrasings, ["how to buy diamonds", "top up", "как купить алмазы"]);
        assert_eq!(c.answer.as_deref(), Some("Pay by card.\nQ: not a phrasing"));
        assert!(c
            .search_text()
            .starts_with("How do I pay?\nhow to buy diamonds\ntop up\nкак купить алмазы\nPay by card."));
        // A section of phrasings only has no answer to give.
        assert!(chunk_markdown("x.md", "# Title\nQ: another way\n", ChunkLimits::default()).is_empty());
    }

    #[test]
    fn long_sections_are_split_with_overlap() {
        let para = "Слово за словом идёт текст. ".repeat(40);
        let text = format!("{para}\n\n{para}");
        let pieces = split_with_overlap(&text, ChunkLimits { max_chars: 500, overlap_chars: 100 });
        assert!(pieces.len() >= 3, "{}", pieces.len());
        for p in &pieces {
            assert!(p.chars().count() <= 500);
        }
        // Overlap: the start of each next piece appears at the end of the previous one.
        for w in pieces.windows(2) {
            let head: String = w[1].chars().take(20).collect();
            assert!(w[0].contains(&head), "no overlap between {:?} and {:?}", w[0], w[1]);
        }
        let chunks = chunk_plain("notes.txt", &text, ChunkLimits { max_chars: 500, overlap_chars: 100 });
        assert!(chunks.iter().all(|c| c.answer.is_none() && c.language.as_deref() == Some("ru")));
    }

    #[test]
    fn jsonl_pairs_and_a_clear_error_for_a_bad_line() {
        let ok = "{\"question\":\"Как оплатить?\",\"answer\":\"Картой.\"}\n\n{\"question\":\"Refund?\",\"answer\":\"Yes.\"}\n";
        let chunks = chunk_jsonl("qa.jsonl", ok).unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].answer.as_deref(), Some("Картой."));
        assert_eq!(chunks[0].language.as_deref(), Some("ru"));
        let err = chunk_jsonl("qa.jsonl", "{\"question\":\"x\"}\n").unwrap_err().to_string();
        assert!(err.contains("qa.jsonl:1") && err.contains("answer"), "{err}");
    }
}

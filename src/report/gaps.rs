//! Content gaps: the questions the agent had to escalate, grouped by how
//! alike they read. Each group is a missing FAQ entry.
//!
//! Each question becomes the knowledge base's own lexical vector
//! ([`Lexical::embed_document`]: stems of Russian and English words, stop
//! words dropped), weighted by how rare each stem is among the escalated
//! questions (so "order" or "заказ" do not make every question alike once
//! there are many; the weight is smoothed so a handful of questions is not
//! split by words that happen to occur once) and scaled to unit length.
//! Grouping is greedy, in question order: a question joins the group whose
//! centroid (the sum of its questions' vectors) is most alike — cosine at
//! least the threshold — or starts a group. An inverted index from stem to
//! the groups whose centroid has it keeps each question's comparisons to
//! the groups it shares a stem with.
//!
//! Memory is bounded: questions are read a page at a time (twice: once to
//! count stems, once to group), and a group keeps its centroid and at most
//! [`KEPT`] question ids and texts. Past [`MAX_GROUPS`] groups a question
//! unlike every group is only counted as `unclustered`.

use std::collections::HashMap;

use crate::knowledge::{Lexical, Redactor};
use crate::store::report::ReportQuery;
use crate::store::{Store, StoreResult};

/// Default cosine a question needs with a group's centroid to join it.
pub const DEFAULT_SIMILARITY: f32 = 0.4;
/// Pseudo-questions added to both sides of the rarity ratio: with few
/// questions every stem weighs about the same, with many the rare ones weigh more.
const SMOOTHING: f32 = 10.0;
/// Questions (ids and texts) a group keeps for examples and answers.
pub const KEPT: usize = 20;
/// Groups tracked at most.
pub const MAX_GROUPS: usize = 5000;
/// Questions read per page.
const PAGE: i64 = 1000;

/// One group of alike escalated questions: a suggested FAQ entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContentGap {
    /// `G` and the agent turn id of the question it is approved with (the
    /// first question with a moderator's answer, else the first question):
    /// the same store and range give the same id, and the id alone finds
    /// the pair again (`/learn G…` in the moderator chat).
    pub id: String,
    /// How many escalated questions the group has.
    pub size: usize,
    /// Distinct example questions, first asked first (redacted).
    pub questions: Vec<String>,
    /// Distinct answers moderators sent after them (redacted).
    pub answers: Vec<String>,
    /// The pair approving the group adds to the knowledge base.
    pub suggested: Option<SuggestedEntry>,
    /// The moderator-chat command that approves it, when there is an answer
    /// (listing it is what lets `/learn G…` approve it: `Store::remember_listed_gaps`).
    pub approve: Option<String>,
}

/// A question and the moderator's answer to it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SuggestedEntry {
    pub question: String,
    pub answer: String,
}

/// The groups found, largest first.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Gaps {
    pub groups: Vec<ContentGap>,
    /// How many groups there were (the list may be shortened).
    pub total_groups: usize,
    /// Escalated questions grouped.
    pub questions: usize,
    /// Questions not grouped because [`MAX_GROUPS`] was reached.
    pub unclustered: usize,
}

/// Turns text into sparse vectors: the knowledge base's lexical vectors,
/// or (built without Qdrant Edge, which supplies the stemmer) lowercase
/// words.
pub enum Vectorizer {
    Lexical(Lexical),
    Words,
}

impl Vectorizer {
    /// The knowledge base's vectors when this build has them.
    pub fn new() -> Self {
        match Lexical::new() {
            Ok(lx) => Vectorizer::Lexical(lx),
            Err(e) => {
                tracing::debug!(error = %e, "content gaps group by plain words");
                Vectorizer::Words
            }
        }
    }

    /// Token ids, sorted and distinct, with their weights.
    fn terms(&self, text: &str) -> Vec<(u32, f32)> {
        match self {
            Vectorizer::Lexical(lx) => {
                let v = lx.embed_document(text);
                v.indices.into_iter().zip(v.values).collect()
            }
            Vectorizer::Words => {
                let mut m = std::collections::BTreeMap::new();
                for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() > 2) {
                    *m.entry(fnv(&w.to_lowercase())).or_insert(0.0) += 1.0;
                }
                m.into_iter().collect()
            }
        }
    }
}

impl Default for Vectorizer {
    fn default() -> Self {
        Self::new()
    }
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Cosine of two unit vectors with sorted indices.
pub fn cosine(a: &[(u32, f32)], b: &[(u32, f32)]) -> f32 {
    let (mut i, mut j, mut dot) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                dot += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    dot
}

/// The sum of two sparse vectors with sorted indices.
fn add(a: &[(u32, f32)], b: &[(u32, f32)]) -> Vec<(u32, f32)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                out.push((x.0, x.1 + y.1));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (None, None) => unreachable!("the loop runs while one side has more"),
        }
    }
    out
}

struct Group {
    /// The sum of its questions' unit vectors (sorted by token).
    centroid: Vec<(u32, f32)>,
    /// The centroid's length.
    norm: f32,
    size: usize,
    /// The first [`KEPT`] questions: (turn id, text).
    kept: Vec<(i64, String)>,
}

/// The greedy grouping, fed one question at a time.
pub struct Grouper {
    similarity: f32,
    /// Stem → in how many questions it occurs.
    df: HashMap<u32, u32>,
    documents: u32,
    groups: Vec<Group>,
    /// Stem → groups whose centroid has it.
    by_term: HashMap<u32, Vec<u32>>,
    /// Per group: the last question that looked at it (avoids comparing twice).
    seen: Vec<u64>,
    counter: u64,
    unclustered: usize,
    questions: usize,
}

impl Grouper {
    pub fn new(similarity: f32) -> Self {
        Self {
            similarity,
            df: HashMap::new(),
            documents: 0,
            groups: Vec::new(),
            by_term: HashMap::new(),
            seen: Vec::new(),
            counter: 0,
            unclustered: 0,
            questions: 0,
        }
    }

    /// First pass: a question's stems count towards their rarity.
    pub fn count(&mut self, terms: &[(u32, f32)]) {
        self.documents += 1;
        for (t, _) in terms {
            *self.df.entry(*t).or_default() += 1;
        }
    }

    fn weigh(&self, terms: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
        let n = self.documents.max(1) as f32;
        let mut v: Vec<(u32, f32)> = terms
            .into_iter()
            .map(|(t, w)| {
                let df = self.df.get(&t).copied().unwrap_or(1).max(1) as f32;
                (t, w * (1.0 + ((n + SMOOTHING) / (df + SMOOTHING)).ln()))
            })
            .collect();
        let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|(_, w)| *w /= norm);
        }
        v
    }

    /// Second pass: the question joins the most alike group or starts one.
    pub fn add(&mut self, turn_id: i64, text: &str, terms: Vec<(u32, f32)>) {
        self.questions += 1;
        let v = self.weigh(terms);
        self.counter += 1;
        let mut best: Option<(usize, f32)> = None;
        for (t, _) in &v {
            for &g in self.by_term.get(t).map(Vec::as_slice).unwrap_or_default() {
                let g = g as usize;
                if self.seen[g] == self.counter {
                    continue;
                }
                self.seen[g] = self.counter;
                let group = &self.groups[g];
                let s = cosine(&v, &group.centroid) / group.norm;
                if s >= self.similarity && best.is_none_or(|(_, b)| s > b) {
                    best = Some((g, s));
                }
            }
        }
        match best {
            Some((g, _)) => {
                let group = &mut self.groups[g];
                for (t, _) in &v {
                    if group.centroid.binary_search_by_key(t, |(k, _)| *k).is_err() {
                        self.by_term.entry(*t).or_default().push(g as u32);
                    }
                }
                group.centroid = add(&group.centroid, &v);
                group.norm = group.centroid.iter().map(|(_, w)| w * w).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
                group.size += 1;
                if group.kept.len() < KEPT {
                    group.kept.push((turn_id, text.to_owned()));
                }
            }
            None if self.groups.len() < MAX_GROUPS => {
                let g = self.groups.len() as u32;
                for (t, _) in &v {
                    self.by_term.entry(*t).or_default().push(g);
                }
                let norm = if v.is_empty() { f32::MIN_POSITIVE } else { 1.0 };
                self.groups.push(Group { centroid: v, norm, size: 1, kept: vec![(turn_id, text.to_owned())] });
                self.seen.push(0);
            }
            None => self.unclustered += 1,
        }
    }
}

/// The content gaps of the range: escalated questions grouped, the `limit`
/// largest with their examples and the moderators' answers, redacted.
pub async fn find(
    store: &Store,
    q: &ReportQuery,
    vectorizer: &Vectorizer,
    similarity: f32,
    limit: usize,
    redactor: &Redactor,
) -> StoreResult<Gaps> {
    let mut grouper = Grouper::new(similarity);
    for second_pass in [false, true] {
        let mut after = 0;
        loop {
            let page = store.report_escalated_questions(q, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.turn_id;
            for question in &page {
                let terms = vectorizer.terms(&question.question);
                if second_pass {
                    grouper.add(question.turn_id, &question.question, terms);
                } else {
                    grouper.count(&terms);
                }
            }
        }
    }
    let Grouper { mut groups, unclustered, questions, .. } = grouper;
    let total_groups = groups.len();
    // Largest first; among equals the earlier question first.
    groups.sort_by(|a, b| b.size.cmp(&a.size).then(a.kept[0].0.cmp(&b.kept[0].0)));
    groups.truncate(limit);
    let ids: Vec<i64> = groups.iter().flat_map(|g| g.kept.iter().map(|(id, _)| *id)).collect();
    let answered: HashMap<i64, String> =
        store.answered_questions(&ids).await?.into_iter().map(|a| (a.turn_id, a.answer)).collect();
    let out = groups
        .into_iter()
        .map(|g| {
            let first_answered = g.kept.iter().find(|(id, _)| answered.contains_key(id));
            let (id, _) = first_answered.unwrap_or(&g.kept[0]);
            let suggested = first_answered
                .map(|(id, q)| SuggestedEntry { question: redactor.redact(q), answer: redactor.redact(&answered[id]) });
            ContentGap {
                id: format!("G{id}"),
                size: g.size,
                questions: distinct(g.kept.iter().map(|(_, q)| redactor.redact(q)), 5),
                answers: distinct(g.kept.iter().filter_map(|(id, _)| answered.get(id)).map(|a| redactor.redact(a)), 3),
                approve: suggested.as_ref().map(|_| format!("/learn G{id}")),
                suggested,
            }
        })
        .collect::<Vec<ContentGap>>();
    // `/learn G…` in the moderator chat approves only a gap listed here with its command.
    let listed: Vec<i64> = out.iter().filter(|g| g.approve.is_some()).filter_map(|g| parse_gap_id(&g.id)).collect();
    if let Err(e) = store.remember_listed_gaps(&listed).await {
        tracing::warn!(error = %e, "could not remember the listed content gaps; /learn G… refuses them until listed again");
    }
    Ok(Gaps { groups: out, total_groups, questions, unclustered })
}

/// Up to `n` distinct texts, in order (compared trimmed and case-folded).
fn distinct(items: impl Iterator<Item = String>, n: usize) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items.filter(|s| seen.insert(s.trim().to_lowercase())).take(n).collect()
}

/// The turn id in a group id (`G123` → 123), as a moderator types it.
pub fn parse_gap_id(s: &str) -> Option<i64> {
    s.trim().strip_prefix(['G', 'g'])?.parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(texts: &[&str]) -> Vec<Vec<usize>> {
        let vz = Vectorizer::Words;
        let mut g = Grouper::new(DEFAULT_SIMILARITY);
        for t in texts {
            g.count(&vz.terms(t));
        }
        for (i, t) in texts.iter().enumerate() {
            g.add(i as i64, t, vz.terms(t));
        }
        g.groups.iter().map(|g| g.kept.iter().map(|(id, _)| *id as usize).collect()).collect()
    }

    #[test]
    fn alike_questions_share_a_group_and_others_do_not() {
        let groups = group(&[
            "where is my refund",
            "refund where is it",
            "the diamonds never arrived",
            "my refund where",
            "diamonds never arrived yet",
            "gift cards sold",
        ]);
        assert_eq!(groups, vec![vec![0, 1, 3], vec![2, 4], vec![5]]);
    }

    #[test]
    fn sparse_sums_merge_by_token() {
        assert_eq!(add(&[(1, 1.0), (3, 1.0)], &[(2, 0.5), (3, 0.5)]), vec![(1, 1.0), (2, 0.5), (3, 1.5)]);
        assert_eq!(add(&[], &[(2, 0.5)]), vec![(2, 0.5)]);
    }

    #[test]
    fn cosine_of_unit_vectors() {
        let a = [(1, 0.6), (3, 0.8)];
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&a, &[(2, 1.0)]), 0.0);
        assert!((cosine(&a, &[(3, 1.0)]) - 0.8).abs() < 1e-6);
    }

    #[test]
    fn gap_ids_read_back() {
        assert_eq!(parse_gap_id("G123"), Some(123));
        assert_eq!(parse_gap_id(" g7 "), Some(7));
        for bad in ["123", "G", "G-1", "G0", "Gx"] {
            assert_eq!(parse_gap_id(bad), None, "{bad}");
        }
    }
}

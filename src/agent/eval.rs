//! `kb eval`: a publisher's own measurement of the agent. Each question of
//! a JSONL set names the source that should answer it (or `escalate`); every
//! question goes through [`Agent::evaluate`] — the daemon's retrieval, model
//! and policy, nothing stored — and the figures say how often the right
//! answer was found (recall@1/@3, MRR) and what the customer would have got
//! (resolved / escalated / wrong).

use serde::Serialize;

use super::{Agent, Evaluation, Hit, Lang, ReasonCode, TurnRequest};

/// What a question should lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A person must answer: hard topics, off-topic questions.
    Escalate,
    /// An answer from this source (path relative to the ingested folder, as
    /// `kb search --json` prints it), and from this section when given.
    Source { source: String, section: Option<String> },
}

impl Expect {
    /// `escalate`, `source` or `source#section`.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if s.eq_ignore_ascii_case("escalate") {
            return Expect::Escalate;
        }
        match s.split_once('#') {
            Some((source, section)) => {
                Expect::Source { source: source.trim().to_owned(), section: Some(section.trim().to_owned()) }
            }
            None => Expect::Source { source: s.to_owned(), section: None },
        }
    }

    /// Whether `hit` is the expected answer. A section matches the hit's
    /// title or the last part of a heading path (`Payment › From abroad`),
    /// ignoring case, so the heading as the author wrote it is enough.
    pub fn matches(&self, hit: &Hit) -> bool {
        self.matches_chunk(&hit.source, &hit.title)
    }

    /// [`Self::matches`] on a chunk's source and title.
    pub fn matches_chunk(&self, hit_source: &str, hit_title: &str) -> bool {
        match self {
            Expect::Escalate => false,
            Expect::Source { source, section } => {
                hit_source == source
                    && section.as_deref().is_none_or(|want| {
                        let want = want.to_lowercase();
                        let title = hit_title.trim().to_lowercase();
                        title == want || title.rsplit(" › ").next() == Some(want.as_str())
                    })
            }
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Escalate => f.write_str("escalate"),
            Expect::Source { source, section: None } => f.write_str(source),
            Expect::Source { source, section: Some(s) } => write!(f, "{source}#{s}"),
        }
    }
}

/// One line of a question set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalQuestion {
    pub q: String,
    pub expect: Expect,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("line {line}: {message} (each line is {{\"q\": \"…\", \"expect\": \"source#section\" | \"escalate\"}})")]
    BadLine { line: usize, message: String },
    #[error("the question set has no questions")]
    Empty,
}

/// Parses a JSONL question set; blank lines are skipped.
pub fn parse_questions(text: &str) -> Result<Vec<EvalQuestion>, EvalError> {
    // Other fields (a note, a category) are the author's and ignored.
    #[derive(serde::Deserialize)]
    struct Line {
        q: String,
        expect: String,
    }
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let bad = |message: String| EvalError::BadLine { line: i + 1, message };
        let line: Line = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        if line.q.trim().is_empty() || line.expect.trim().is_empty() {
            return Err(bad("empty \"q\" or \"expect\"".into()));
        }
        out.push(EvalQuestion { q: line.q, expect: Expect::parse(&line.expect) });
    }
    if out.is_empty() {
        return Err(EvalError::Empty);
    }
    Ok(out)
}

/// What the customer would have got, judged against the expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Answered from the expected source.
    Resolved,
    /// Handed to a person (right for `escalate`, a miss otherwise — but never harmful).
    Escalated,
    /// Answered from another source, or answered when `escalate` was expected.
    Wrong,
}

/// One question's result.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionResult {
    pub q: String,
    pub expect: String,
    pub language: Lang,
    /// 1-based rank of the first expected hit in the first search; `None`
    /// when it was not retrieved or `escalate` is expected.
    pub rank: Option<usize>,
    /// The first three hits, `source#title`.
    pub top: Vec<String>,
    pub verdict: Verdict,
    /// The hits the answer cites, `source#title` (empty when escalated).
    pub answered_from: Vec<String>,
    pub confidence: Option<f64>,
    /// Why it escalated.
    pub reasons: Vec<String>,
    /// Hybrid search: the cosine of the expected hit (answerable questions),
    /// or of the top hit (questions expecting `escalate`).
    pub similarity: Option<f64>,
    /// Hybrid search: the best cosine among retrieved hits that are not the
    /// expected answer (answerable questions).
    pub other_similarity: Option<f64>,
    /// The most confident hit of the first search and whether it is the
    /// expected answer: a point of the separation curve. `None` when a rule
    /// about the question itself (hard topic, repeat) decided, or nothing was found.
    pub best: Option<Scored>,
}

/// A confidence and whether its hit was the right answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scored {
    pub confidence: f64,
    pub right: bool,
}

fn label(h: &Hit) -> String {
    format!("{}#{}", h.source, h.title)
}

/// Judges one evaluated turn.
pub fn judge(question: &EvalQuestion, ev: &Evaluation) -> QuestionResult {
    let rank = ev.retrieved.iter().position(|h| question.expect.matches(h)).map(|i| i + 1);
    let escalate = question.expect.to_string() == "escalate";
    let similarity = if escalate {
        ev.retrieved.first().and_then(|h| h.similarity)
    } else {
        ev.retrieved.iter().find(|h| question.expect.matches(h)).and_then(|h| h.similarity)
    };
    let other_similarity = (!escalate)
        .then(|| {
            ev.retrieved.iter().filter(|h| !question.expect.matches(h)).filter_map(|h| h.similarity).reduce(f64::max)
        })
        .flatten();
    let cited: Vec<&Hit> = ev.outcome.sources.iter().filter_map(|id| ev.hits.iter().find(|h| &h.id == id)).collect();
    let verdict = if ev.outcome.escalated() {
        Verdict::Escalated
    } else if cited.iter().any(|h| question.expect.matches(h)) {
        Verdict::Resolved
    } else {
        Verdict::Wrong
    };
    let question_rule =
        ev.outcome.reasons.iter().any(|r| matches!(r.code, ReasonCode::HardTopic | ReasonCode::RepeatedQuestion));
    let best = ev
        .retrieved
        .iter()
        .reduce(|b, h| if h.score > b.score { h } else { b })
        .filter(|_| !question_rule)
        .map(|h| Scored { confidence: h.score, right: question.expect.matches(h) });
    QuestionResult {
        q: question.q.clone(),
        expect: question.expect.to_string(),
        language: ev.outcome.language,
        rank,
        top: ev.retrieved.iter().take(3).map(label).collect(),
        verdict,
        answered_from: if verdict == Verdict::Escalated { vec![] } else { cited.into_iter().map(label).collect() },
        confidence: ev.outcome.confidence,
        reasons: ev.outcome.reasons.iter().map(ToString::to_string).collect(),
        similarity,
        other_similarity,
        best,
    }
}

/// How well the confidence separates right answers from wrong ones on this
/// set: for each threshold, how many questions would be answered right and
/// how many wrong, if the most confident hit were sent from that threshold
/// up. The question rules (hard topics, repeats) are left out: they escalate
/// whatever the score.
#[derive(Debug, Clone, Serialize)]
pub struct Separation {
    /// Area under the ROC curve: the chance that a right answer is more
    /// confident than a wrong one (1 = a threshold separates them all).
    pub auc: f64,
    /// Best first: every distinct confidence as a threshold.
    pub curve: Vec<CurveStep>,
    /// The lowest threshold with no wrong answer above it, when one resolves
    /// anything: set it as `[agent] min_curated_score` to refine the bar the
    /// corpus calibration chose, on your own questions.
    pub suggested_min_curated_score: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurveStep {
    pub threshold: f64,
    pub resolved: usize,
    pub wrong: usize,
}

impl Separation {
    fn of(details: &[QuestionResult]) -> Option<Self> {
        let points: Vec<Scored> = details.iter().filter_map(|d| d.best).collect();
        if points.is_empty() {
            return None;
        }
        let right: Vec<f64> = points.iter().filter(|p| p.right).map(|p| p.confidence).collect();
        let wrong: Vec<f64> = points.iter().filter(|p| !p.right).map(|p| p.confidence).collect();
        let mut thresholds: Vec<f64> = points.iter().map(|p| p.confidence).collect();
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        let curve: Vec<CurveStep> = thresholds
            .iter()
            .map(|&t| CurveStep {
                threshold: t,
                resolved: right.iter().filter(|&&c| c >= t).count(),
                wrong: wrong.iter().filter(|&&c| c >= t).count(),
            })
            .collect();
        let suggested = curve.iter().filter(|s| s.wrong == 0 && s.resolved > 0).map(|s| s.threshold).reduce(f64::min);
        Some(Self {
            auc: crate::knowledge::calibration::auc(&right, &wrong),
            curve,
            suggested_min_curated_score: suggested,
        })
    }

    fn render(&self) -> String {
        let mut s = format!(
            "separation: AUC {:.2} (1 = every right answer more confident than every wrong one)\n  threshold  resolved  wrong\n",
            self.auc
        );
        // At most a dozen rows: every step where the wrong count changes, and the ends.
        let mut shown: Vec<&CurveStep> = Vec::new();
        for (i, step) in self.curve.iter().enumerate() {
            let changes = self.curve.get(i + 1).is_none_or(|next| next.wrong != step.wrong) || i == 0;
            if changes {
                shown.push(step);
            }
        }
        let stride = shown.len().div_ceil(12).max(1);
        for step in shown.iter().step_by(stride) {
            s.push_str(&format!("  {:>9.3}  {:>8}  {:>5}\n", step.threshold, step.resolved, step.wrong));
        }
        s.push_str(&match self.suggested_min_curated_score {
            Some(t) => format!("on these questions no wrong answer from {t:.3} up: [agent] min_curated_score = {t:.3} refines the calibrated bar\n"),
            None => "on these questions a wrong answer is more confident than every right one: keep the calibrated bar\n".to_owned(),
        });
        s
    }
}

/// The settings the figures were measured with.
#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    pub mode: &'static str,
    pub hits: usize,
    /// `None`: calibrated on the corpus (each hit carries its corpus's bar).
    pub min_curated_score: Option<f64>,
    pub min_retrieval_score: Option<f64>,
    pub min_confidence: f64,
}

impl Thresholds {
    pub fn of(agent: &Agent) -> Self {
        let s = agent.settings();
        Self {
            mode: agent.mode().as_str(),
            hits: s.hits,
            min_curated_score: s.min_curated_score,
            min_retrieval_score: s.min_retrieval_score,
            min_confidence: s.min_confidence,
        }
    }
}

/// The figures of a whole set. Recall and MRR are over the answerable
/// questions (those not expecting `escalate`); `resolved + escalated + wrong = questions`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub questions: usize,
    pub answerable: usize,
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    pub mrr: f64,
    pub resolved: usize,
    pub escalated: usize,
    pub wrong: usize,
    /// Of the questions expecting `escalate`, how many escalated.
    pub escalated_as_expected: usize,
    pub thresholds: Thresholds,
    /// How well the confidence separates right from wrong on this set.
    pub separation: Option<Separation>,
    /// Questions whose search went on lexically because the embedding
    /// provider failed or was slow (hybrid mode; set by the caller).
    pub dense_fallbacks: u64,
    pub details: Vec<QuestionResult>,
}

impl EvalReport {
    pub fn new(details: Vec<QuestionResult>, thresholds: Thresholds) -> Self {
        let answerable: Vec<&QuestionResult> = details.iter().filter(|d| d.expect != "escalate").collect();
        let n = answerable.len();
        let share = |k: usize| {
            if n == 0 {
                0.0
            } else {
                answerable.iter().filter(|d| d.rank.is_some_and(|r| r <= k)).count() as f64 / n as f64
            }
        };
        let mrr = if n == 0 {
            0.0
        } else {
            answerable.iter().filter_map(|d| d.rank).map(|r| 1.0 / r as f64).sum::<f64>() / n as f64
        };
        let count = |v: Verdict| details.iter().filter(|d| d.verdict == v).count();
        Self {
            questions: details.len(),
            answerable: n,
            recall_at_1: share(1),
            recall_at_3: share(3),
            mrr,
            resolved: count(Verdict::Resolved),
            escalated: count(Verdict::Escalated),
            wrong: count(Verdict::Wrong),
            escalated_as_expected: details
                .iter()
                .filter(|d| d.expect == "escalate" && d.verdict == Verdict::Escalated)
                .count(),
            thresholds,
            separation: Separation::of(&details),
            dense_fallbacks: 0,
            details,
        }
    }

    /// The human-readable report: one line per question, then the figures.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (i, d) in self.details.iter().enumerate() {
            let mark = match d.verdict {
                Verdict::Resolved => "✔ resolved ",
                Verdict::Escalated if d.expect == "escalate" => "✔ escalated",
                Verdict::Escalated => "· escalated",
                Verdict::Wrong => "✘ WRONG    ",
            };
            let rank = d.rank.map(|r| format!("rank {r}")).unwrap_or_else(|| "rank —".into());
            let conf = d.confidence.map(|c| format!("{c:.2}")).unwrap_or_else(|| "—".into());
            s.push_str(&format!("{:>3}. {mark} [{rank}, conf {conf}] {}\n", i + 1, d.q));
            s.push_str(&format!("     expect {}\n", d.expect));
            if !d.answered_from.is_empty() {
                s.push_str(&format!("     answered from {}\n", d.answered_from.join(", ")));
            }
            if let Some(top) = d.top.first() {
                s.push_str(&format!("     top {top}\n"));
            }
            for r in &d.reasons {
                s.push_str(&format!("     why: {r}\n"));
            }
        }
        let t = &self.thresholds;
        s.push_str(&format!(
            "\nquestions {} ({} answerable, {} expecting escalate)\n\
             recall@1 {:.2}  recall@3 {:.2}  MRR {:.2}\n\
             resolved {}  escalated {}  wrong {}  (escalate expected and done: {})\n\
             mode {}, hits {}, min_curated_score {}, min_retrieval_score {}, min_confidence {:.2}\n",
            self.questions,
            self.answerable,
            self.questions - self.answerable,
            self.recall_at_1,
            self.recall_at_3,
            self.mrr,
            self.resolved,
            self.escalated,
            self.wrong,
            self.escalated_as_expected,
            t.mode,
            t.hits,
            bar(t.min_curated_score),
            bar(t.min_retrieval_score),
            t.min_confidence,
        ));
        if let Some(sep) = &self.separation {
            s.push_str(&sep.render());
        }
        if self.dense_fallbacks > 0 {
            s.push_str(&format!(
                "warning: {} search(es) went on lexically because the embedding provider failed or was slow: \
                 these figures are partly lexical\n",
                self.dense_fallbacks
            ));
        }
        s
    }
}

/// A configured threshold, or the calibration's.
fn bar(v: Option<f64>) -> String {
    v.map_or_else(|| "calibrated".to_owned(), |v| format!("{v:.2}"))
}

/// Runs every question through the agent, one at a time, as first questions
/// of their own conversations.
pub async fn run(agent: &Agent, questions: &[EvalQuestion]) -> EvalReport {
    let mut details = Vec::with_capacity(questions.len());
    for q in questions {
        let ev = agent.evaluate(TurnRequest { question: q.q.clone(), ..Default::default() }).await;
        details.push(judge(q, &ev));
    }
    EvalReport::new(details, Thresholds::of(agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(source: &str, title: &str) -> Hit {
        Hit {
            id: format!("{source}/{title}"),
            source: source.into(),
            title: title.into(),
            text: String::new(),
            answer: None,
            kind: "doc".into(),
            language: None,
            score: 1.0,
            similarity: None,
            bar: None,
        }
    }

    #[test]
    fn expectations_parse_and_match_sections_by_heading() {
        assert_eq!(Expect::parse(" Escalate "), Expect::Escalate);
        let e = Expect::parse("faq.md#Paying from abroad");
        assert!(e.matches(&hit("faq.md", "paying from abroad")));
        assert!(e.matches(&hit("faq.md", "Payment › Paying from abroad")));
        assert!(!e.matches(&hit("faq.md", "Refunds")));
        assert!(!e.matches(&hit("other.md", "Paying from abroad")));
        assert!(Expect::parse("faq.md").matches(&hit("faq.md", "anything")));
        assert_eq!(e.to_string(), "faq.md#Paying from abroad");
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = parse_questions("{\"q\":\"a\",\"expect\":\"escalate\"}\n\n{\"q\":\"b\"}\n").unwrap_err();
        assert!(err.to_string().starts_with("line 3:"), "{err}");
        assert!(matches!(parse_questions("\n"), Err(EvalError::Empty)));
    }
}

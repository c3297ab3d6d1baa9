//! The lexical evidence of a hit: how much of the customer's question a
//! section contains, on a scale that means the same on a 12-document FAQ and
//! on a 10,000-chunk corpus (raw BM25 grows with the query's length and with
//! the corpus through IDF). Ratios measured per query:
//!
//! - **coverage**: the share of the query's words (stemmed, stop words
//!   dropped) that the chunk contains — words the knowledge base has never
//!   seen make the search less sure. Unweighted on purpose: rarity among the
//!   candidates (tried) rewards a word that happens to occur in one
//!   unrelated section;
//! - **title coverage**: the same share against the chunk's question — its
//!   heading or one of the author's other phrasings, whichever fits best (one
//!   phrasing at a time: words scattered over several phrasings are no
//!   question anyone asked) — discounted a little for the question's own
//!   words the query lacks: a narrower question is another question;
//! - **fit** `0.35·coverage + 0.65·title_coverage`, and its **margin**
//!   `1 − f₂/f₁` over the best other candidate (0 when it does not fit best):
//!   two sections that fit equally well are a question for a person.
//!
//! What these are worth on a given corpus, together with the dense side, is
//! learnt from the corpus itself ([`super::calibration`]); the fixed
//! combination [`uncalibrated`] is used only for a corpus too small to learn from.

use std::collections::HashSet;

use super::Lexical;

/// Weight of coverage of the whole chunk (question + body) against the question alone.
const BODY_WEIGHT: f64 = 0.35;
/// How much a question's words that the query lacks count against it.
const NARROWER_DISCOUNT: f64 = 0.15;
/// The part of the uncalibrated confidence that does not depend on the margin.
const MARGIN_FLOOR: f64 = 0.6;

/// Why a hit got its confidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    pub coverage: f64,
    pub title_coverage: f64,
    /// The lexical fit's margin over the next candidate.
    pub margin: f64,
    /// The probability, on this corpus, that the hit answers the question ([`super::calibration`]).
    pub confidence: f64,
    /// Which retrievers returned the hit (hybrid search; lexical otherwise).
    pub found_by: FoundBy,
    /// The dense retriever's cosine similarity, when it returned the hit.
    pub dense_similarity: Option<f64>,
    /// The cosine's position in the corpus's distribution and its gap to the
    /// next candidate's, in the corpus's spread (0 in lexical search).
    pub dense_position: f64,
    pub dense_gap: f64,
    /// Both retrievers put this hit first.
    pub agreement: bool,
    /// The confidence came from a calibration of this corpus (false: a corpus
    /// too small to calibrate, or not calibrated yet: run `kb ingest`).
    pub calibrated: bool,
}

/// Which retrievers agreed on a hit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FoundBy {
    #[default]
    Lexical,
    Dense,
    Both,
}

/// One candidate as the lexical evidence sees it: its texts.
pub struct Candidate<'a> {
    /// The questions the chunk answers: its heading path, then the phrasings.
    pub questions: Vec<&'a str>,
    /// The chunk's text and answer (the questions may be in it or not).
    pub body: &'a str,
}

/// The lexical evidence of one candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LexicalFit {
    pub coverage: f64,
    pub title_coverage: f64,
    pub fit: f64,
    pub margin: f64,
}

/// The lexical evidence of every candidate of one query (in any order), in the same order.
pub fn lexical(lexical: &Lexical, query: &str, candidates: &[Candidate<'_>]) -> Vec<LexicalFit> {
    let terms: HashSet<u32> = lexical.embed_query(query).indices.into_iter().collect();
    if terms.is_empty() {
        return vec![LexicalFit::default(); candidates.len()];
    }
    let words = |text: &str| -> HashSet<u32> { lexical.embed_document(text).indices.into_iter().collect() };
    let share = |set: &HashSet<u32>| terms.iter().filter(|t| set.contains(t)).count() as f64 / terms.len() as f64;
    let fits: Vec<LexicalFit> = candidates
        .iter()
        .map(|c| {
            let questions: Vec<HashSet<u32>> = c.questions.iter().map(|q| words(q)).collect();
            let mut all = words(c.body);
            all.extend(questions.iter().flatten().copied());
            let coverage = share(&all);
            // A question with words the query lacks asks something narrower:
            // a small discount, enough to prefer the question that is asked.
            let precision = |q: &HashSet<u32>| {
                let n = q.len().max(1) as f64;
                q.iter().filter(|t| terms.contains(t)).count() as f64 / n
            };
            let title_coverage = questions
                .iter()
                .map(|q| share(q) * (1.0 - NARROWER_DISCOUNT * (1.0 - precision(q))))
                .fold(0.0, f64::max);
            let fit = BODY_WEIGHT * coverage + (1.0 - BODY_WEIGHT) * title_coverage;
            LexicalFit { coverage, title_coverage, fit, margin: 0.0 }
        })
        .collect();
    fits.iter()
        .enumerate()
        .map(|(i, f)| {
            let best_other = fits.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, o)| o.fit).fold(0.0, f64::max);
            let margin = if f.fit > 0.0 { (1.0 - best_other / f.fit).clamp(0.0, 1.0) } else { 0.0 };
            LexicalFit { margin, ..*f }
        })
        .collect()
}

/// What [`uncalibrated`] must reach for a stored answer to be sent as it is.
pub const UNCALIBRATED_BAR: f64 = 0.4;
/// What the support of a model's answer must reach on the uncalibrated scale.
pub const UNCALIBRATED_FLOOR: f64 = 0.3;

/// The confidence of a lexical search, and of a corpus too small to
/// calibrate: `fit · (0.6 + 0.4·margin)`.
pub fn uncalibrated(f: &LexicalFit) -> f64 {
    f.fit * (MARGIN_FLOOR + (1.0 - MARGIN_FLOOR) * f.margin)
}

#[cfg(all(test, feature = "edge"))]
mod tests {
    use super::*;

    /// The fixed combination's confidence beside the lexical evidence.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Scored {
        title_coverage: f64,
        margin: f64,
        confidence: f64,
    }

    fn calibrate_lexical(lx: &Lexical, query: &str, candidates: &[Candidate<'_>]) -> Vec<Scored> {
        lexical(lx, query, candidates)
            .iter()
            .map(|f| Scored { title_coverage: f.title_coverage, margin: f.margin, confidence: uncalibrated(f) })
            .collect()
    }

    /// `_bm25`: what the index would rank by; the calibration must not need it.
    fn candidate<'a>(_bm25: f64, questions: Vec<&'a str>, body: &'a str) -> Candidate<'a> {
        Candidate { questions, body }
    }

    #[test]
    fn the_section_that_asks_the_question_is_sure_and_a_tie_is_not() {
        let lx = Lexical::new().unwrap();
        let pay = candidate(9.0, vec!["How do I pay for diamonds?", "How can I top up?"], "Pay by card in the bot.");
        let friend = candidate(3.0, vec!["Can I buy diamonds for a friend?"], "Yes, enter their ID.");
        let e = calibrate_lexical(&lx, "how do I top up", &[pay, friend]);
        // "top up" is a phrasing of the first: every query word, in one question.
        assert_eq!(e[0].title_coverage, 1.0);
        assert_eq!(e[0].margin, 1.0, "nothing else fits at all: {e:?}");
        assert!(e[0].confidence > 0.8, "{e:?}");
        assert_eq!(e[1].margin, 0.0);
        assert!(e[1].confidence < 0.2, "{e:?}");

        // Two sections that fit equally: the margin, and so the confidence, drops.
        let a = candidate(5.0, vec!["How do I pay?"], "Pay by card.");
        let b = candidate(5.0, vec!["When can I pay?"], "Any card works.");
        let tie = calibrate_lexical(&lx, "pay", &[a, b]);
        assert_eq!(tie[0].margin, 0.0);
        assert!(tie[0].confidence <= 0.6 + 1e-9, "{tie:?}");
    }

    #[test]
    fn the_margin_is_on_fit_not_on_bm25_and_the_asked_question_beats_a_narrower_one() {
        let lx = Lexical::new().unwrap();
        // BM25 puts the narrower question first; the question as asked still wins.
        let friend = candidate(9.0, vec!["Can I buy diamonds for a friend?"], "Yes, enter their ID.");
        let pay = candidate(6.0, vec!["How do I pay for diamonds?", "How can I buy diamonds?"], "Pay by card.");
        let e = calibrate_lexical(&lx, "how can I buy diamonds", &[friend, pay]);
        assert!(e[1].title_coverage > e[0].title_coverage, "{e:?}");
        assert!(e[1].margin > 0.0 && e[0].margin == 0.0, "{e:?}");
        assert!(e[1].confidence > e[0].confidence, "{e:?}");
    }

    #[test]
    fn words_the_knowledge_base_lacks_lower_the_confidence_and_corpus_size_does_not() {
        let lx = Lexical::new().unwrap();
        let safe = || candidate(4.0, vec!["Is it safe to pay here?"], "Payment runs in the official bot.");
        let on_topic = calibrate_lexical(&lx, "is it safe to pay", &[safe()])[0];
        let off_topic = calibrate_lexical(&lx, "is it safe to swim in the sea", &[safe()])[0];
        assert!(on_topic.confidence > 0.9, "{on_topic:?}");
        assert!(off_topic.confidence < 0.4, "{off_topic:?}");

        // The same best hit among 200 unrelated candidates: the same confidence.
        let filler: Vec<String> = (0..200).map(|i| format!("Section {i} about lorem ipsum")).collect();
        let mut many = vec![safe()];
        many.extend(filler.iter().map(|f| candidate(0.5, vec![f.as_str()], f.as_str())));
        let big = calibrate_lexical(&lx, "is it safe to pay", &many)[0];
        let small = calibrate_lexical(&lx, "is it safe to pay", &[safe(), candidate(0.5, vec!["x"], "lorem")])[0];
        assert_eq!(big, small);
    }
}

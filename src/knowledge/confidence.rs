//! A calibrated lexical confidence: how sure a search is, on a scale that
//! means the same on a 12-document FAQ and on a 10,000-chunk corpus.
//!
//! A raw BM25 score grows with the query's length and with the corpus
//! (through IDF), so no fixed threshold on it works everywhere. The
//! confidence here is built from ratios measured per query instead:
//!
//! - **coverage**: the share of the query's words (stemmed, stop words
//!   dropped) that the chunk contains — words the knowledge base has never
//!   seen make the search less sure. Unweighted on purpose: rarity among the
//!   candidates (tried) rewards a word that happens to occur in one
//!   unrelated section and did worse on both question sets;
//! - **title coverage**: the same share against the chunk's question — its
//!   heading or one of the author's other phrasings, whichever fits best (one
//!   phrasing at a time: words scattered over several phrasings are no
//!   question anyone asked) — discounted a little for the question's own
//!   words the query lacks: a narrower question is another question. A
//!   question is answered by the section that asks it, not by one that
//!   mentions its words in passing;
//! - **margin**: how far the hit's fit (`0.35·coverage + 0.65·title_coverage`)
//!   is ahead of the best other candidate's (`1 − f₂/f₁`, 0 when it does not
//!   fit best): two sections that fit equally well are a question for a
//!   person. Measured on the fit, not on BM25, whose ranking favours rare
//!   words and short sections over the question that was asked.
//!
//! `confidence = fit · (0.6 + 0.4·margin)`:
//! 1.0 is a hit whose question contains every word of the query and that is
//! far ahead of the next one; see docs/agent.md for what thresholds mean.

use std::collections::HashSet;

use super::Lexical;

/// Weight of coverage of the whole chunk (question + body) against the question alone.
const BODY_WEIGHT: f64 = 0.35;
/// How much a question's words that the query lacks count against it.
const NARROWER_DISCOUNT: f64 = 0.15;
/// The part of the confidence that does not depend on the margin.
const MARGIN_FLOOR: f64 = 0.6;

/// Why a hit got its confidence; all in [0, 1].
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Evidence {
    pub coverage: f64,
    pub title_coverage: f64,
    pub margin: f64,
    pub confidence: f64,
    /// Which retrievers returned the hit (hybrid search; lexical otherwise).
    pub found_by: FoundBy,
    /// The dense retriever's cosine similarity, when it returned the hit.
    /// Part of `confidence` only through a measured [`DenseScale`].
    pub dense_similarity: Option<f64>,
}

/// Which retrievers agreed on a hit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FoundBy {
    #[default]
    Lexical,
    Dense,
    Both,
}

/// Where the embedding model's cosines mean something, measured by the
/// publisher for their model (`kb eval` suggests both): at `min` and below a
/// dense match is no evidence, at `sure` and above it is as good as a
/// question that has every word of the query. Cosines of different models
/// live on different scales, so there is no default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseScale {
    pub min: f64,
    pub sure: f64,
}

impl DenseScale {
    /// A cosine as a fit in [0, 1].
    pub fn fit(self, cosine: f64) -> f64 {
        ((cosine - self.min) / (self.sure - self.min)).clamp(0.0, 1.0)
    }
}

/// One candidate as the calibration sees it: its texts and, in hybrid
/// search, the dense retriever's cosine.
pub struct Candidate<'a> {
    /// The cosine, when the dense retriever returned this candidate.
    pub dense_similarity: Option<f64>,
    /// The questions the chunk answers: its heading path, then the phrasings.
    pub questions: Vec<&'a str>,
    /// The chunk's text and answer (the questions may be in it or not).
    pub body: &'a str,
}

/// Confidences for `candidates` (the candidate list of one query, in any
/// order), in the same order. With a `dense` scale a candidate's fit is the
/// better of its lexical fit and its cosine's; without one the cosine is
/// only recorded.
pub fn calibrate(
    lexical: &Lexical,
    query: &str,
    candidates: &[Candidate<'_>],
    dense: Option<DenseScale>,
) -> Vec<Evidence> {
    let terms: HashSet<u32> = lexical.embed_query(query).indices.into_iter().collect();
    if terms.is_empty() {
        return candidates
            .iter()
            .map(|c| Evidence { dense_similarity: c.dense_similarity, ..Evidence::default() })
            .collect();
    }
    let words = |text: &str| -> HashSet<u32> { lexical.embed_document(text).indices.into_iter().collect() };
    let share = |set: &HashSet<u32>| terms.iter().filter(|t| set.contains(t)).count() as f64 / terms.len() as f64;
    // How well each candidate fits the query, before the margin.
    let fits: Vec<(f64, f64, f64)> = candidates
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
            let lexical_fit = BODY_WEIGHT * coverage + (1.0 - BODY_WEIGHT) * title_coverage;
            let dense_fit = match (dense, c.dense_similarity) {
                (Some(scale), Some(cosine)) => scale.fit(cosine),
                _ => 0.0,
            };
            (coverage, title_coverage, lexical_fit.max(dense_fit))
        })
        .collect();
    fits.iter()
        .enumerate()
        .map(|(i, &(coverage, title_coverage, fit))| {
            let best_other = fits.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, f)| f.2).fold(0.0, f64::max);
            let margin = if fit > 0.0 { (1.0 - best_other / fit).clamp(0.0, 1.0) } else { 0.0 };
            let confidence = fit * (MARGIN_FLOOR + (1.0 - MARGIN_FLOOR) * margin);
            let dense_similarity = candidates[i].dense_similarity;
            Evidence { coverage, title_coverage, margin, confidence, dense_similarity, ..Evidence::default() }
        })
        .collect()
}

#[cfg(all(test, feature = "edge"))]
mod tests {
    use super::*;

    fn calibrate_lexical(lx: &Lexical, query: &str, candidates: &[Candidate<'_>]) -> Vec<Evidence> {
        calibrate(lx, query, candidates, None)
    }

    #[test]
    fn a_measured_dense_scale_lets_a_close_cosine_count_and_no_scale_leaves_it_out() {
        let lx = Lexical::new().unwrap();
        let scale = DenseScale { min: 0.80, sure: 0.90 };
        assert_eq!((scale.fit(0.75), scale.fit(0.95)), (0.0, 1.0));
        assert!((scale.fit(0.85) - 0.5).abs() < 1e-9);
        // No shared word, but the model says they mean the same.
        let pay = Candidate { questions: vec!["How do I pay?"], body: "By card.", dense_similarity: Some(0.93) };
        let friend =
            Candidate { questions: vec!["Gifts for a friend?"], body: "Enter their ID.", dense_similarity: Some(0.81) };
        let with = calibrate(&lx, "top up diamonds", &[pay, friend], Some(scale));
        assert!(with[0].confidence > 0.9, "{with:?}");
        assert!(with[1].confidence < 0.1, "{with:?}");
        assert_eq!(with[0].dense_similarity, Some(0.93));
        let pay = Candidate { questions: vec!["How do I pay?"], body: "By card.", dense_similarity: Some(0.93) };
        let without = calibrate(&lx, "top up diamonds", &[pay], None);
        assert_eq!(without[0].confidence, 0.0, "{without:?}");
        assert_eq!(without[0].dense_similarity, Some(0.93), "recorded all the same");
    }

    /// `_bm25`: what the index would rank by; the calibration must not need it.
    fn candidate<'a>(_bm25: f64, questions: Vec<&'a str>, body: &'a str) -> Candidate<'a> {
        Candidate { questions, body, dense_similarity: None }
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

//! The corpus calibration's measurements: each sampled section's heading,
//! sentences and phrasings are asked like a customer's question, in hybrid
//! search, with the section itself left out. What they find is what a question this
//! knowledge base cannot answer looks like here ([`Calibration`]'s bar), and
//! their cosines with the sections that do not contain them are the corpus's
//! dense scale.

use super::calibration::{Calibration, DenseScale, Features, Model, CALIBRATION_VERSION};
use super::index::ChunkPayload;
use super::search::CandidateList;
use super::{candidate_count, KnowledgeBase, KnowledgeError, SearchFilter};

/// Sections sampled: enough for a stable bar, few enough that a large corpus
/// calibrates in seconds.
const SECTIONS: usize = 100;
/// Sentences asked per section.
const SENTENCES: usize = 3;
/// Phrasings asked per section.
const PHRASINGS: usize = 2;
/// Candidates kept per pseudo-question: the best and its rivals.
const RIVALS: usize = 3;
/// Hits a customer search returns by default (`[agent] hits`): the
/// calibration sees the same number of candidates as a real search.
const HITS: usize = 5;

/// The questions a section answers by construction: its heading (the last
/// part of the title path), up to [`SENTENCES`] sentences of its body and up
/// to [`PHRASINGS`] phrasings.
pub fn pseudo_questions(p: &ChunkPayload) -> Vec<String> {
    let heading = p.title.rsplit(" › ").next().unwrap_or(&p.title).trim();
    let body = p.answer.as_deref().unwrap_or(&p.text);
    std::iter::once(heading)
        .filter(|h| !h.is_empty())
        .chain(sentences(body).into_iter().take(SENTENCES))
        .chain(p.phrasings.iter().map(String::as_str).take(PHRASINGS))
        .map(str::to_owned)
        .collect()
}

/// The sentences of a body with at least four words.
fn sentences(body: &str) -> Vec<&str> {
    let body = body.trim();
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in body.char_indices() {
        let end = i + c.len_utf8();
        let next = body[end..].chars().next();
        if matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace) {
            out.push(body[start..end].trim());
            start = end;
        }
    }
    out.push(body[start..].trim());
    out.retain(|s| s.split_whitespace().count() >= 4);
    out
}

impl KnowledgeBase {
    /// Measures the embedded corpus on its own pseudo-questions; `None` for a
    /// lexical knowledge base, or one too small to say anything (fewer than
    /// two sections). `model`: the weights in force.
    pub(crate) async fn calibrate(&self, model: Model) -> Result<Option<Calibration>, KnowledgeError> {
        let (Some(embedder), Some(name)) = (&self.embedder, self.dense_model()) else { return Ok(None) };
        let sections = self.index.sample(SECTIONS).await?;
        if sections.len() < 2 {
            return Ok(None);
        }
        let probes: Vec<(usize, String)> = sections
            .iter()
            .enumerate()
            .flat_map(|(i, s)| pseudo_questions(&s.payload).into_iter().map(move |q| (i, q)))
            .collect();
        let questions: Vec<String> = probes.iter().map(|(_, q)| q.clone()).collect();
        let vectors = embedder.embed_queries(&questions).await?;
        let n = candidate_count(HITS);
        let mut lists = Vec::with_capacity(probes.len());
        for ((i, question), vector) in probes.iter().zip(&vectors) {
            let section = &sections[*i];
            let filter = SearchFilter { language: section.payload.language.clone(), ..Default::default() };
            lists.push((question, self.candidates(question, Some(vector), &filter, n, Some(&section.id)).await?));
        }
        // The corpus's unit: cosines between questions and sections that do not contain them.
        let others: Vec<f64> = lists.iter().flat_map(|(_, l)| l.cosines.iter().flatten().copied()).collect();
        let Some(dense_scale) = DenseScale::of(&others) else { return Ok(None) };
        let absent = lists.iter().filter_map(|(q, list)| self.surest(q, list, dense_scale, &model)).collect();
        Ok(Some(Calibration {
            version: CALIBRATION_VERSION,
            model,
            dense_model: name.to_owned(),
            sections: sections.len(),
            questions: probes.len(),
            dense_scale,
            absent,
            learnt: Default::default(),
        }))
    }

    /// The features of the few candidates `model` is surest of, surest first (none: no candidate).
    fn surest(&self, question: &str, list: &CandidateList, scale: DenseScale, model: &Model) -> Option<Vec<Features>> {
        let (_, mut features) = self.features(question, &list.members(), Some(scale));
        features.sort_by(|a, b| model.probability(b).total_cmp(&model.probability(a)));
        features.truncate(RIVALS);
        (!features.is_empty()).then_some(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::ChunkKind;

    fn payload(title: &str, text: &str, phrasings: &[&str]) -> ChunkPayload {
        ChunkPayload {
            source: "faq.md".into(),
            title: title.into(),
            phrasings: phrasings.iter().map(|p| (*p).to_owned()).collect(),
            text: text.into(),
            answer: Some(text.into()),
            language: Some("en".into()),
            kind: ChunkKind::Doc,
            content_hash: "h".into(),
            ingested_at: String::new(),
        }
    }

    #[test]
    fn a_section_is_asked_by_its_heading_sentences_and_phrasings() {
        let p = payload(
            "Shop › Delivery",
            "Diamonds arrive within five minutes of payment. At busy times it can take up to an hour. Ok.",
            &["When do I get my diamonds?"],
        );
        assert_eq!(
            pseudo_questions(&p),
            [
                "Delivery",
                "Diamonds arrive within five minutes of payment.",
                "At busy times it can take up to an hour.",
                "When do I get my diamonds?"
            ]
        );
        assert_eq!(sentences("Pay by card. It works in five minutes"), ["It works in five minutes"]);
        assert_eq!(
            sentences("Оплата картой в боте Tribute. Деньги списываются сразу же."),
            ["Оплата картой в боте Tribute.", "Деньги списываются сразу же."]
        );
    }
}

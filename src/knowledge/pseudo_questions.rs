//! The corpus calibration's measurements: each sampled section's heading,
//! sentences and phrasings are asked like a customer's question with the
//! section itself left out. What they find is what a question this
//! knowledge base cannot answer looks like here ([`Calibration`]'s bar), and
//! their cosines with the sections that do not contain them are the corpus's
//! dense scale.

use super::calibration::{Calibration, DenseScale, Features, Model};
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
    /// Measures the corpus on its own pseudo-questions; `None` when it is too
    /// small to say anything (fewer than two sections, or no pseudo-question
    /// finds another section). `model`: the weights in force. A failing
    /// embedding provider leaves the hybrid part out, with a warning.
    pub(crate) async fn calibrate(&self, model: Model) -> Result<Option<Calibration>, KnowledgeError> {
        let sections = self.index.sample(SECTIONS).await?;
        if sections.len() < 2 {
            return Ok(None);
        }
        let probes: Vec<(usize, String)> = sections
            .iter()
            .enumerate()
            .flat_map(|(i, s)| pseudo_questions(&s.payload).into_iter().map(move |q| (i, q)))
            .collect();
        let vectors = match &self.embedder {
            None => None,
            Some(e) => {
                let questions: Vec<String> = probes.iter().map(|(_, q)| q.clone()).collect();
                match e.embed_queries(&questions).await {
                    Ok(v) => Some(v),
                    Err(err) => {
                        tracing::warn!(error = %err, "the calibration could not embed its pseudo-questions; calibrating the lexical side only");
                        None
                    }
                }
            }
        };
        let n = candidate_count(HITS);
        let mut lexical = Vec::new();
        let mut dense = Vec::new();
        for (k, (i, question)) in probes.iter().enumerate() {
            let section = &sections[*i];
            let filter = SearchFilter { language: section.payload.language.clone(), ..Default::default() };
            let list = self.candidates(question, None, &filter, n, Some(&section.id)).await?;
            lexical.extend(self.best(question, &list, None, &model, false));
            if let Some(vectors) = &vectors {
                dense.push((k, self.candidates(question, Some(&vectors[k]), &filter, n, Some(&section.id)).await?));
            }
        }
        if lexical.is_empty() && dense.is_empty() {
            return Ok(None);
        }
        // The corpus's unit: cosines between questions and sections that do not contain them.
        let others: Vec<f64> = dense.iter().flat_map(|(_, l)| l.cosines.iter().flatten().copied()).collect();
        let hybrid = match (DenseScale::of(&others), self.dense_model()) {
            (Some(scale), Some(name)) => {
                let absent: Vec<Vec<Features>> = dense
                    .iter()
                    .filter_map(|(k, list)| self.best(&probes[*k].1, list, Some(scale), &model, true))
                    .collect();
                Some((absent, scale, name.to_owned()))
            }
            _ => None,
        };
        Ok(Some(Calibration::new(model, sections.len(), probes.len(), lexical, hybrid)))
    }

    /// The features of the few candidates `model` is surest of (none: no candidate).
    fn best(
        &self,
        question: &str,
        list: &CandidateList,
        scale: Option<DenseScale>,
        model: &Model,
        hybrid: bool,
    ) -> Option<Vec<Features>> {
        let (_, mut features) = self.features(question, &list.members(), scale);
        features.sort_by(|a, b| model.probability(b, hybrid).total_cmp(&model.probability(a, hybrid)));
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

//! Hybrid search: the dense and the lexical candidate lists are merged by
//! reciprocal rank fusion (RRF), which needs no score calibration between
//! cosine similarities and BM25 sums. Without a dense vector the lexical
//! list is the answer.

use std::collections::{HashMap, HashSet};

use super::confidence::FoundBy;
use super::index::{ChunkPayload, IndexHit};

/// The usual RRF constant: damps the weight of the very first ranks.
pub const RRF_K: f64 = 60.0;

/// Fuses ranked lists; each hit scores `Σ 1 / (k + rank)` (rank from 1),
/// divided by the best possible sum (first in every list), so 1.0 means
/// "ranked first by every retriever". Ties keep no particular order.
pub fn rrf(lists: Vec<Vec<IndexHit>>) -> Vec<(IndexHit, f64)> {
    let n = lists.len().max(1) as f64;
    let best = n / (RRF_K + 1.0);
    let mut fused: HashMap<String, (IndexHit, f64)> = HashMap::new();
    for list in lists {
        for (rank, hit) in list.into_iter().enumerate() {
            let s = 1.0 / (RRF_K + rank as f64 + 1.0);
            fused.entry(hit.id.clone()).or_insert_with(|| (hit, 0.0)).1 += s;
        }
    }
    let mut out: Vec<(IndexHit, f64)> = fused.into_values().map(|(h, s)| (h, s / best)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// One query's candidates, best first, with what each retriever said.
#[derive(Debug, Default)]
pub struct CandidateList {
    pub hits: Vec<IndexHit>,
    /// What the hits are ranked by: BM25 (lexical only) or the fused RRF score.
    pub rank_scores: Vec<f64>,
    /// The dense retriever's cosine, per hit, when it returned the hit.
    pub cosines: Vec<Option<f64>>,
    pub found_by: Vec<FoundBy>,
}

/// A candidate as the evidence sees it.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub payload: &'a ChunkPayload,
    pub cosine: Option<f64>,
    pub found_by: FoundBy,
}

impl CandidateList {
    /// The lexical list alone, or fused with the dense one (`Some`, even empty).
    pub fn fuse(lexical: Vec<IndexHit>, dense: Option<Vec<IndexHit>>) -> Self {
        let Some(dense) = dense else {
            let rank_scores = lexical.iter().map(|h| f64::from(h.score)).collect();
            let n = lexical.len();
            return Self { hits: lexical, rank_scores, cosines: vec![None; n], found_by: vec![FoundBy::Lexical; n] };
        };
        let lexical_ids: HashSet<String> = lexical.iter().map(|h| h.id.clone()).collect();
        let cosines: HashMap<String, f64> = dense.iter().map(|h| (h.id.clone(), f64::from(h.score))).collect();
        let mut out = Self::default();
        for (hit, score) in rrf(vec![dense, lexical]) {
            let cosine = cosines.get(&hit.id).copied();
            out.found_by.push(match (lexical_ids.contains(&hit.id), cosine.is_some()) {
                (true, true) => FoundBy::Both,
                (false, true) => FoundBy::Dense,
                _ => FoundBy::Lexical,
            });
            out.cosines.push(cosine);
            out.rank_scores.push(score);
            out.hits.push(hit);
        }
        out
    }

    pub fn members(&self) -> Vec<Member<'_>> {
        self.hits
            .iter()
            .zip(&self.cosines)
            .zip(&self.found_by)
            .map(|((h, &cosine), &found_by)| Member { payload: &h.payload, cosine, found_by })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::index::ChunkPayload;
    use crate::knowledge::ChunkKind;

    fn hit(id: &str) -> IndexHit {
        IndexHit {
            id: id.into(),
            score: 0.0,
            payload: ChunkPayload {
                source: "s".into(),
                title: id.into(),
                phrasings: vec![],
                text: id.into(),
                answer: None,
                language: None,
                kind: ChunkKind::Doc,
                content_hash: id.into(),
                ingested_at: String::new(),
            },
        }
    }

    #[test]
    fn agreement_wins_and_scores_are_normalised() {
        let fused = rrf(vec![vec![hit("a"), hit("b"), hit("c")], vec![hit("a"), hit("c")]]);
        assert_eq!(fused[0].0.id, "a");
        assert!((fused[0].1 - 1.0).abs() < 1e-9);
        // c: ranks 3 and 2 beats b: rank 2 in one list only.
        let ids: Vec<&str> = fused.iter().map(|(h, _)| h.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "b"]);
    }

    #[test]
    fn mirrored_lists_tie_exactly() {
        let fused = rrf(vec![vec![hit("x"), hit("y")], vec![hit("y"), hit("x")]]);
        // Compare scores, not the order of tied ids.
        assert_eq!(fused[0].1, fused[1].1);
        let mut ids: Vec<&str> = fused.iter().map(|(h, _)| h.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["x", "y"]);
    }
}

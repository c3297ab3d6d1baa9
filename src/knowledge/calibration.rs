//! How sure a search is, on the scale of the corpus it searched.
//!
//! No fixed number says when a hit is right: BM25 grows with the corpus, an
//! embedding model's cosines live on its own compressed scale (one FAQ: right
//! hits 0.85–0.94, wrong ones up to 0.89), and a FAQ written as "a heading
//! and a paragraph" looks nothing like one with question phrasings. So each
//! candidate is described by relative signals only ([`Features`]): the
//! lexical fit and its margin over the next candidate, the cosine's position
//! in this corpus's distribution of cosines between questions and sections
//! that do not answer them, its gap to the next cosine in that unit, and
//! whether both retrievers put it first. A logistic regression turns them
//! into one confidence: the probability that the hit answers the question.
//!
//! - **The weights** ([`Model`]) are fitted on labelled customer questions:
//!   by default the ones shipped in `src/knowledge/calibration-prior.json`
//!   (fitted by `kb eval --learn` on the starter FAQ's question sets); a
//!   publisher's own `kb eval --learn` refits them on their questions.
//! - **The corpus's scale** is measured at ingest from its own
//!   pseudo-questions (each section's heading, sentences and phrasings,
//!   [`super::pseudo_questions`]): the cosines between them and the sections
//!   that do not contain them give the dense unit.
//! - **The bar** ([`Calibration::bar`]) comes from the same pseudo-questions asked
//!   with their own section left out — what a question this knowledge base
//!   cannot answer looks like here: a curated answer is sent only when it is
//!   more confident than every one of them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::KnowledgeError;

/// File under the knowledge directory holding the calibration.
pub const CALIBRATION_FILE: &str = "calibration.json";
/// Bumped when the features or their meaning change: an older file is recomputed.
pub const CALIBRATION_VERSION: u32 = 1;

/// One candidate's raw signals, as search measures them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    /// Lexical fit in [0, 1] (`confidence::lexical`), and its two parts.
    pub lexical_fit: f64,
    pub coverage: f64,
    pub title_coverage: f64,
    /// Cosine with the query, when the dense retriever scored this candidate.
    pub cosine: Option<f64>,
}

/// The relative evidence a confidence is computed from; each is comparable
/// across corpora because it is measured against the other candidates or
/// against the corpus's own distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub lexical_fit: f64,
    /// The share of the query's words in the chunk, and in its best question.
    pub coverage: f64,
    pub title_coverage: f64,
    /// `1 − f₂/f₁`: how far the lexical fit is ahead of the best other candidate's (0 unless first).
    pub lexical_margin: f64,
    /// `(cosine − μ) / σ` of the corpus's cosines between questions and sections that do not answer them.
    pub dense_position: f64,
    /// `(cosine − best other cosine) / σ`: negative when another candidate is closer.
    pub dense_gap: f64,
    /// 1 when both retrievers put this candidate first.
    pub agreement: f64,
}

impl Features {
    fn vector(&self) -> Vec<f64> {
        vec![
            self.coverage,
            self.title_coverage,
            self.lexical_margin,
            self.dense_position,
            self.dense_gap,
            self.agreement,
        ]
    }
}

/// The corpus's scale of cosines: mean and spread of the cosines between a
/// question and a section that does not answer it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DenseScale {
    pub mean: f64,
    pub spread: f64,
}

impl DenseScale {
    pub fn of(cosines: &[f64]) -> Option<Self> {
        if cosines.len() < 2 {
            return None;
        }
        let n = cosines.len() as f64;
        let mean = cosines.iter().sum::<f64>() / n;
        let var = cosines.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0);
        Some(Self { mean, spread: var.sqrt().max(1e-6) })
    }
}

/// Features of every candidate of one query. `dense`: the corpus's scale,
/// when the query was searched densely (no cosine anywhere = lexical only).
pub fn features(signals: &[Signals], margins: &[f64], dense: Option<DenseScale>) -> Vec<Features> {
    let best_lexical = argmax(signals.iter().map(|s| s.lexical_fit));
    let best_dense = argmax(signals.iter().map(|s| s.cosine.unwrap_or(f64::NEG_INFINITY)));
    // A candidate the dense retriever did not return is at most as close as
    // the farthest one it did.
    let floor = signals.iter().filter_map(|s| s.cosine).reduce(f64::min);
    signals
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut f = Features {
                lexical_fit: s.lexical_fit,
                coverage: s.coverage,
                title_coverage: s.title_coverage,
                lexical_margin: margins[i],
                ..Features::default()
            };
            if let (Some(scale), Some(floor)) = (dense, floor) {
                let cosine = s.cosine.unwrap_or(floor);
                let other = signals
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, o)| o.cosine.unwrap_or(floor))
                    .reduce(f64::max)
                    .unwrap_or(scale.mean);
                f.dense_position = (cosine - scale.mean) / scale.spread;
                f.dense_gap = (cosine - other) / scale.spread;
                f.agreement = f64::from(best_lexical == Some(i) && best_dense == Some(i) && s.cosine.is_some());
            }
            f
        })
        .collect()
}

fn argmax(values: impl Iterator<Item = f64>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in values.enumerate() {
        if v > f64::NEG_INFINITY && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// A logistic regression: `P(right) = σ(w·x + b)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    pub weights: Vec<f64>,
    pub bias: f64,
}

impl Logistic {
    pub fn probability(&self, x: &[f64]) -> f64 {
        let z: f64 = self.bias + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }

    /// Fits by gradient descent with a small L2 penalty (a small set is often
    /// separable; the penalty keeps the weights finite) and the two classes
    /// weighted equally, however many of each there are. `None` without both.
    pub fn fit(samples: &[(Vec<f64>, bool)]) -> Option<Self> {
        let positives = samples.iter().filter(|(_, y)| *y).count();
        let negatives = samples.len() - positives;
        if positives == 0 || negatives == 0 {
            return None;
        }
        let dims = samples[0].0.len();
        let (wp, wn) = (0.5 / positives as f64, 0.5 / negatives as f64);
        let mut model = Self { weights: vec![0.0; dims], bias: 0.0 };
        const L2: f64 = 0.01;
        const STEPS: usize = 3000;
        const RATE: f64 = 0.5;
        for _ in 0..STEPS {
            let mut grad = vec![0.0; dims];
            let mut grad_b = 0.0;
            for (x, y) in samples {
                let weight = if *y { wp } else { wn };
                let err = (model.probability(x) - f64::from(u8::from(*y))) * weight;
                for (g, v) in grad.iter_mut().zip(x) {
                    *g += err * v;
                }
                grad_b += err;
            }
            for (w, g) in model.weights.iter_mut().zip(&grad) {
                *w -= RATE * (g + L2 * *w);
            }
            model.bias -= RATE * grad_b;
        }
        Some(model)
    }
}

/// The weights, and where they were learnt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// On `[coverage, title_coverage, lexical_margin, dense_position, dense_gap, agreement]`.
    pub weights: Logistic,
    /// What the weights were fitted on, for people.
    pub learnt_from: String,
}

/// The default weights, fitted by `kb eval --learn` on the starter FAQ's
/// three question sets (see docs/agent.md) and shipped with the binary.
const PRIOR: &str = include_str!("calibration-prior.json");

impl Model {
    pub fn prior() -> Self {
        serde_json::from_str(PRIOR).expect("knowledge/calibration-prior.json is a model")
    }

    /// Fits the weights on labelled candidates: each question's candidates,
    /// the expected one right. `None` without both kinds.
    pub fn learn(samples: &[(Features, bool)], from: String) -> Option<Self> {
        let data: Vec<(Vec<f64>, bool)> = samples.iter().map(|(f, y)| (f.vector(), *y)).collect();
        Some(Self { weights: Logistic::fit(&data)?, learnt_from: from })
    }

    pub fn probability(&self, f: &Features) -> f64 {
        self.weights.probability(&f.vector())
    }
}

/// The calibration of one embedded corpus, stored beside the index. A
/// lexical search is not calibrated: without a dense side the only evidence
/// is lexical, and the fixed combination of [`super::confidence`] did better
/// on every question set measured (docs/agent.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub version: u32,
    pub model: Model,
    /// The dense model the corpus was measured with.
    pub dense_model: String,
    /// Sections sampled and pseudo-questions asked.
    pub sections: usize,
    pub questions: usize,
    pub dense_scale: DenseScale,
    /// The best few candidates of each pseudo-question asked with its own
    /// section left out: what the bar is measured on, kept so a refitted
    /// model gets its bar at once.
    pub absent: Vec<Vec<Features>>,
    /// The labelled candidates of every question `kb eval --learn` was given
    /// for this knowledge base, by question: each set adds its own (a question
    /// taught again replaces its earlier candidates), and the weights are
    /// fitted on all of them.
    #[serde(default)]
    pub learnt: std::collections::BTreeMap<String, Vec<(Features, bool)>>,
}

impl Calibration {
    /// The scale of cosines for [`features`], when this calibration applies to `model`.
    pub fn dense_scale_for(&self, model: Option<&str>) -> Option<DenseScale> {
        (model == Some(self.dense_model.as_str())).then_some(self.dense_scale)
    }

    /// The confidence of a candidate of a hybrid search.
    pub fn confidence(&self, f: &Features) -> f64 {
        self.model.probability(f)
    }

    /// What the corpus says a hit's confidence must reach: above the surest
    /// candidate of every pseudo-question whose section was left out, so
    /// nothing this corpus cannot answer would have been answered. The same
    /// bar serves a stored answer (`[agent] min_curated_score` overrides it)
    /// and, as the floor of the support a model's answer cites, the LLM
    /// (`min_retrieval_score`): a model that answers everything from the top
    /// hit must not get through where the bare hit would not.
    pub fn bar(&self) -> f64 {
        self.absent.iter().flat_map(|list| list.first()).map(|f| self.confidence(f)).fold(0.0, f64::max)
    }

    pub fn path(knowledge_dir: &Path) -> PathBuf {
        knowledge_dir.join(CALIBRATION_FILE)
    }

    /// The stored calibration, if there is a current one.
    pub fn load(knowledge_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(Self::path(knowledge_dir)).ok()?;
        serde_json::from_str::<Self>(&text).ok().filter(|c| c.version == CALIBRATION_VERSION)
    }

    pub fn save(&self, knowledge_dir: &Path) -> Result<(), KnowledgeError> {
        let path = Self::path(knowledge_dir);
        let tmp = path.with_extension("json.tmp");
        let io = |p: &Path| {
            let path = p.to_owned();
            move |source| KnowledgeError::Io { path, source }
        };
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).expect("plain data")).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }
}

/// The `q` quantile (nearest rank) of `values`; 0 when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// The probability that a random right score beats a random wrong one
/// (ties count half): the area under the ROC curve.
pub fn auc(right: &[f64], wrong: &[f64]) -> f64 {
    if right.is_empty() || wrong.is_empty() {
        return 0.0;
    }
    let mut wins = 0.0;
    for r in right {
        for w in wrong {
            wins += if r > w {
                1.0
            } else if r == w {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (right.len() * wrong.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(position: f64, gap: f64) -> Features {
        Features {
            lexical_fit: 0.5,
            coverage: 0.5,
            title_coverage: 0.5,
            dense_position: position,
            dense_gap: gap,
            ..Features::default()
        }
    }

    #[test]
    fn a_learnt_model_orders_separable_samples_and_the_bar_sits_above_every_absent_answer() {
        let mut labelled = Vec::new();
        for i in 0..20 {
            let x = f64::from(i) / 20.0;
            labelled.push((f(2.0 + 2.0 * x, 0.5 + x), true));
            labelled.push((f(-1.0 + x, -0.5 - x), false));
        }
        let model = Model::learn(&labelled, "test".into()).unwrap();
        let (hi, lo) = (model.probability(&f(3.0, 1.0)), model.probability(&f(-0.5, -1.0)));
        assert!(hi > 0.5 && lo < 0.5, "{hi} {lo}");
        let c = Calibration {
            version: CALIBRATION_VERSION,
            model: model.clone(),
            dense_model: "m".into(),
            sections: 10,
            questions: 20,
            dense_scale: DenseScale { mean: 0.8, spread: 0.02 },
            absent: vec![vec![f(0.0, 0.0), f(-1.0, -1.0)], vec![f(1.0, 0.2)]],
            learnt: [("q".to_owned(), labelled.clone())].into(),
        };
        let bar = c.bar();
        assert_eq!(bar, model.probability(&f(1.0, 0.2)), "the surest absent candidate sets it");
        assert!(hi > bar && lo < bar);
        assert_eq!(c.dense_scale_for(Some("m")), Some(c.dense_scale));
        assert_eq!(c.dense_scale_for(Some("other")), None, "measured with another model: not this scale");
        assert!(Model::learn(&labelled[..1], "one".into()).is_none(), "one class only: nothing to learn");
    }

    #[test]
    fn the_prior_prefers_a_close_cosine_ahead_of_the_rest_and_agreeing_retrievers() {
        let prior = Model::prior();
        assert!(prior.probability(&f(4.0, 1.5)) > prior.probability(&f(1.0, 0.1)));
        assert!(prior.probability(&f(3.0, 1.0)) > prior.probability(&f(3.0, -1.0)), "another candidate is closer");
        let sure = Features { lexical_margin: 0.8, coverage: 0.9, title_coverage: 0.9, ..f(3.0, 1.0) };
        assert!(prior.probability(&sure) > prior.probability(&f(3.0, 1.0)), "the words agree too");
    }

    #[test]
    fn dense_features_are_relative_to_the_corpus_and_to_the_other_candidates() {
        let scale = DenseScale::of(&[0.80, 0.82, 0.84]).unwrap();
        assert!((scale.mean - 0.82).abs() < 1e-9 && (scale.spread - 0.02).abs() < 1e-9);
        let s = [
            Signals { lexical_fit: 0.5, coverage: 0.5, title_coverage: 0.5, cosine: Some(0.90) },
            Signals { lexical_fit: 0.2, coverage: 0.2, title_coverage: 0.2, cosine: Some(0.86) },
            Signals { lexical_fit: 0.1, coverage: 0.1, title_coverage: 0.1, cosine: None },
        ];
        let f = features(&s, &[0.6, 0.0, 0.0], Some(scale));
        assert!((f[0].dense_position - 4.0).abs() < 1e-6, "{f:?}");
        assert!((f[0].dense_gap - 2.0).abs() < 1e-6, "{f:?}");
        assert!((f[1].dense_gap + 2.0).abs() < 1e-6, "{f:?}");
        assert_eq!((f[0].agreement, f[1].agreement, f[2].agreement), (1.0, 0.0, 0.0));
        // Not returned by the dense retriever: as far as the farthest that was.
        assert!((f[2].dense_position - 2.0).abs() < 1e-6, "{f:?}");
        // Lexical only: no dense evidence at all.
        let lexical = features(&s, &[0.6, 0.0, 0.0], None);
        assert_eq!((lexical[0].dense_position, lexical[0].agreement), (0.0, 0.0));
    }

    #[test]
    fn auc_and_quantiles() {
        assert_eq!(auc(&[0.9, 0.8], &[0.1, 0.2]), 1.0);
        assert_eq!(auc(&[0.5], &[0.5]), 0.5);
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}

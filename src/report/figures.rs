//! The report's figures, read from the store for one range: the model every
//! format renders, and (serialised) the `--format json` document of
//! docs/report.md.

use std::collections::BTreeMap;

use serde::Serialize;

use super::gaps::{self, ContentGap, Vectorizer};
use super::{Range, ReportSettings};
use crate::knowledge::Redactor;
use crate::store::report::{OrderBucket, QuestionBucket, Spread};
use crate::store::{rfc3339, Store, StoreResult};

/// Everything one report says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub range: RangeInfo,
    pub orders: Orders,
    pub questions: Questions,
    pub moderators: Moderators,
    pub trend: Vec<TrendPoint>,
    pub content_gaps: Vec<ContentGap>,
    pub content_gap_summary: GapSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RangeInfo {
    pub since: String,
    pub until: String,
    pub generated_at: String,
    pub bucket: &'static str,
    pub resolution_window_secs: u64,
    /// The same three times in unix ms, for the pages that say them in words.
    #[serde(skip)]
    pub since_ms: i64,
    #[serde(skip)]
    pub until_ms: i64,
    #[serde(skip)]
    pub generated_at_ms: i64,
}

/// Orders received in the range, by where they are now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Orders {
    pub paid: i64,
    pub completed: i64,
    pub completed_automatically: i64,
    pub completed_after_contact: i64,
    pub completed_by_moderator: i64,
    pub refunded: i64,
    pub failed: i64,
    pub open: i64,
    pub open_escalated: i64,
    pub open_needs_customer: i64,
    /// Age of the oldest open order, seconds; null when none is open.
    pub oldest_open_age_secs: Option<i64>,
    /// completed_automatically / completed; null without completed orders.
    pub automation_rate: Option<f64>,
    pub payment_to_send_ms: Spread,
}

/// Customer questions (agent turns) asked in the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Questions {
    pub asked: i64,
    pub resolved_by_agent: i64,
    pub reopened: i64,
    pub escalated: i64,
    pub pending: i64,
    /// resolved_by_agent / (asked − pending); null when nothing is decided.
    pub resolution_rate: Option<f64>,
    pub escalated_by_reason: BTreeMap<String, i64>,
    pub answered_by_moderator: i64,
    pub first_answer_ms: Spread,
    pub resolved_conversations: i64,
    pub messages_per_resolved_conversation: Option<f64>,
}

/// Cases and what moderators did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Moderators {
    pub cases_opened: i64,
    pub cases_closed: i64,
    pub cases_opened_by_reason: BTreeMap<String, i64>,
    pub first_action_ms: Spread,
    pub cases_without_action: i64,
    pub open_cases_by_age: OpenByAge,
    pub actions: Vec<ModeratorActions>,
    /// Messages from people who are not moderators, refused.
    pub refused: i64,
}

/// Open cases now, by how long they have been open.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpenByAge {
    pub under_1h: i64,
    #[serde(rename = "1h_to_24h")]
    pub h1_to_24h: i64,
    #[serde(rename = "1d_to_7d")]
    pub d1_to_7d: i64,
    pub over_7d: i64,
}

impl OpenByAge {
    pub fn total(&self) -> i64 {
        self.under_1h + self.h1_to_24h + self.d1_to_7d + self.over_7d
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeratorActions {
    pub moderator_id: i64,
    pub total: i64,
    pub by_action: BTreeMap<String, i64>,
}

/// One day or week of the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrendPoint {
    pub start: String,
    #[serde(skip)]
    pub start_ms: i64,
    pub paid: i64,
    pub completed: i64,
    pub completed_automatically: i64,
    pub completed_after_contact: i64,
    pub completed_by_moderator: i64,
    pub questions: i64,
    pub resolved_by_agent: i64,
    pub escalated: i64,
    pub cases_opened: i64,
    pub payment_to_send_p50_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GapSummary {
    /// Escalated questions grouped.
    pub questions: usize,
    /// Groups found (`content_gaps` lists the largest).
    pub groups: usize,
    /// Questions left out because too many groups were found.
    pub unclustered: usize,
}

/// What to compute besides the counts.
pub struct Options<'a> {
    /// How many content gaps to list (0: skip grouping).
    pub gaps: usize,
    pub vectorizer: &'a Vectorizer,
    pub redactor: &'a Redactor,
}

/// The trend point of bucket `b` (buckets past the range's end are left out).
fn point(trend: &mut [TrendPoint], b: i64) -> Option<&mut TrendPoint> {
    usize::try_from(b).ok().and_then(|i| trend.get_mut(i))
}

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Reads the report for `range` as of `now` (unix ms, the program's clock).
pub async fn build(
    store: &Store,
    range: &Range,
    settings: &ReportSettings,
    now: i64,
    opts: &Options<'_>,
) -> StoreResult<Report> {
    let q = range.query(now, settings.resolution_window);
    let whole = q.whole();
    let order_buckets = store.report_orders(&q).await?;
    let question_buckets = store.report_questions(&q).await?;
    let send_by_bucket = store.report_payment_to_send(&q).await?;
    let cases_by_bucket = store.report_cases_opened(&q).await?;

    let mut o = OrderBucket::default();
    order_buckets.iter().for_each(|b| o.add(b));
    let orders = Orders {
        paid: o.paid,
        completed: o.completed,
        completed_automatically: o.completed_automatically,
        completed_after_contact: o.completed_after_contact,
        completed_by_moderator: o.completed_by_moderator,
        refunded: o.refunded,
        failed: o.failed,
        open: o.open,
        open_escalated: o.open_escalated,
        open_needs_customer: o.open_needs_customer,
        oldest_open_age_secs: o.oldest_open_at.map(|t| (now - t).max(0) / 1000),
        automation_rate: rate(o.completed_automatically, o.completed),
        payment_to_send_ms: store.report_payment_to_send(&whole).await?.first().copied().unwrap_or_default(),
    };

    let mut t = QuestionBucket::default();
    question_buckets.iter().for_each(|b| t.add(b));
    let (resolved_conversations, resolved_messages) = store.report_resolved_conversations(&q).await?;
    let questions = Questions {
        asked: t.asked,
        resolved_by_agent: t.resolved_by_agent,
        reopened: t.reopened,
        escalated: t.escalated,
        pending: t.pending,
        resolution_rate: rate(t.resolved_by_agent, t.asked - t.pending),
        escalated_by_reason: store.report_escalation_reasons(&q).await?.into_iter().collect(),
        answered_by_moderator: t.answered_by_moderator,
        first_answer_ms: store.report_first_answer(&whole).await?.first().copied().unwrap_or_default(),
        resolved_conversations,
        messages_per_resolved_conversation: (resolved_conversations > 0)
            .then(|| resolved_messages as f64 / resolved_conversations as f64),
    };

    let cases = store.report_cases(&q).await?;
    let mut actions: BTreeMap<i64, ModeratorActions> = BTreeMap::new();
    for (moderator_id, action, n) in store.report_moderator_actions(&q).await? {
        let a = actions.entry(moderator_id).or_insert_with(|| ModeratorActions {
            moderator_id,
            total: 0,
            by_action: BTreeMap::new(),
        });
        a.total += n;
        a.by_action.insert(action, n);
    }
    let mut actions: Vec<ModeratorActions> = actions.into_values().collect();
    actions.sort_by(|a, b| b.total.cmp(&a.total).then(a.moderator_id.cmp(&b.moderator_id)));
    let [under_1h, h1_to_24h, d1_to_7d, over_7d] = cases.open_by_age;
    let moderators = Moderators {
        cases_opened: cases.opened,
        cases_closed: cases.closed,
        cases_opened_by_reason: store.report_case_reasons(&q).await?.into_iter().collect(),
        first_action_ms: store.report_first_action(&q).await?,
        cases_without_action: cases.without_action,
        open_cases_by_age: OpenByAge { under_1h, h1_to_24h, d1_to_7d, over_7d },
        actions,
        refused: cases.refused,
    };

    let mut trend: Vec<TrendPoint> = (0..range.buckets())
        .map(|b| {
            let start_ms = range.bucket_start(b);
            TrendPoint { start: rfc3339(start_ms), start_ms, ..TrendPoint::default() }
        })
        .collect();
    for b in &order_buckets {
        if let Some(p) = point(&mut trend, b.bucket) {
            p.paid = b.paid;
            p.completed = b.completed;
            p.completed_automatically = b.completed_automatically;
            p.completed_after_contact = b.completed_after_contact;
            p.completed_by_moderator = b.completed_by_moderator;
        }
    }
    for b in &question_buckets {
        if let Some(p) = point(&mut trend, b.bucket) {
            p.questions = b.asked;
            p.resolved_by_agent = b.resolved_by_agent;
            p.escalated = b.escalated;
        }
    }
    for s in &send_by_bucket {
        if let Some(p) = point(&mut trend, s.bucket) {
            p.payment_to_send_p50_ms = s.p50;
        }
    }
    for (b, n) in &cases_by_bucket {
        if let Some(p) = point(&mut trend, *b) {
            p.cases_opened = *n;
        }
    }

    let found = if opts.gaps > 0 {
        gaps::find(store, &q, opts.vectorizer, settings.gap_similarity, opts.gaps, opts.redactor).await?
    } else {
        gaps::Gaps::default()
    };
    Ok(Report {
        range: RangeInfo {
            since: rfc3339(range.since_ms),
            until: rfc3339(range.until_ms),
            generated_at: rfc3339(now),
            bucket: range.bucket.as_str(),
            resolution_window_secs: settings.resolution_window.as_secs(),
            since_ms: range.since_ms,
            until_ms: range.until_ms,
            generated_at_ms: now,
        },
        orders,
        questions,
        moderators,
        trend,
        content_gap_summary: GapSummary {
            questions: found.questions,
            groups: found.total_groups,
            unclustered: found.unclustered,
        },
        content_gaps: found.groups,
    })
}

//! The agent as the contact flow's [`QuestionHandler`]: a customer message
//! that is not an account ID becomes one agent turn (stored in
//! `agent_turns`), answered or handed to the moderator with the agent's
//! draft and the policy reasons on the card.

use std::sync::Arc;

use anyhow::Context;
use tracing::{info, info_span, Instrument};

use super::knowledge_retriever::KnowledgeRetriever;
use super::{Agent, HistoryMessage, Speaker, TurnRequest};
use crate::contact::{Question, QuestionHandler, QuestionOutcome};
use crate::domain::{Author, Direction};
use crate::knowledge::KnowledgeBase;
use crate::store::Store;

pub struct AgentQuestions {
    agent: Arc<Agent>,
    store: Store,
}

impl AgentQuestions {
    pub fn new(agent: Arc<Agent>, store: Store) -> Self {
        Self { agent, store }
    }

    /// The conversation before this question, as the agent sees it: what the
    /// customer wrote and what they were sent; internal moderator notes and
    /// our own templates stay out.
    async fn history(&self, q: &Question) -> anyhow::Result<Vec<HistoryMessage>> {
        let messages =
            self.store.conversation_messages(q.conversation_id).await.context("Failed to read the conversation")?;
        Ok(messages
            .into_iter()
            .filter(|m| m.id < q.message_id && m.direction != Direction::Internal)
            .filter_map(|m| {
                let speaker = match m.author {
                    Author::Customer => Speaker::Customer,
                    Author::Agent => Speaker::Agent,
                    Author::Moderator => Speaker::Moderator,
                    Author::Assistant => return None,
                };
                Some(HistoryMessage { speaker, text: m.text })
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl QuestionHandler for AgentQuestions {
    async fn on_question(&self, q: &Question) -> anyhow::Result<QuestionOutcome> {
        let span = info_span!("agent_turn", conversation = q.conversation_id, customer = q.customer_id);
        async {
            let history = self.history(q).await?;
            let outcome = self
                .agent
                .answer(TurnRequest {
                    conversation_id: Some(q.conversation_id),
                    customer_id: Some(q.customer_id),
                    question: q.text.clone(),
                    language: Some(q.language),
                    history,
                })
                .await;
            if outcome.escalated() {
                info!(reasons = ?outcome.reasons, "the agent hands the question to a person");
                Ok(QuestionOutcome::Escalate(outcome.verdict()))
            } else {
                info!(confidence = ?outcome.confidence, sections = ?outcome.source_titles, "the agent answered");
                Ok(QuestionOutcome::Answer(outcome.reply))
            }
        }
        .instrument(span)
        .await
    }
}

/// The agent over `kb` as the contact flow's question handler.
pub fn handler(settings: super::AgentSettings, kb: KnowledgeBase, store: Store) -> anyhow::Result<AgentQuestions> {
    let retriever = Arc::new(KnowledgeRetriever::new(kb));
    let agent = Agent::new(settings, retriever, Arc::new(store.clone()), store.clone())
        .context("Failed to set up the agent")?;
    info!(mode = agent.mode().as_str(), "the agent answers customers' questions");
    Ok(AgentQuestions::new(Arc::new(agent), store))
}

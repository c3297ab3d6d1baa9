//! `/forget <user id>`: a moderator erases a customer's personal data
//! (`retention::forget_customer`), and the desk removes the answers learned
//! from their conversation from the knowledge base it learns into. The
//! audit line says what kinds of data went and how many rows, never whose
//! or what they said.

use super::Command;
use crate::moderator::{Learner, ModeratorDesk, Result};
use crate::retention::{forget_customer, remove_from_index, CustomerId, IndexEraser, Requester};
use crate::runtime::clock::now_ms;
use crate::store::Forgotten;
use crate::telegram::{Message, UserId};

const USAGE: &str = "Use /forget <Telegram user id> (the customer's id, e.g. /forget 123456789): it erases their \
                     messages, the agent's answers and their cases' texts; their orders keep the money facts.";

/// `/forget <Telegram user id>`; anything else is a usage error.
pub(super) fn parse(arg: String) -> Command {
    arg.parse().map_or(Command::ForgetUsage(arg), Command::Forget)
}

/// The learner, as the index an erasure removes from.
struct Unlearn<'a>(&'a dyn Learner);

#[async_trait::async_trait]
impl IndexEraser for Unlearn<'_> {
    async fn remove_conversation(&self, conversation_id: i64) -> anyhow::Result<()> {
        self.0.unlearn(conversation_id).await
    }
}

impl ModeratorDesk {
    pub(in crate::moderator) async fn forget(&self, m: &Message, from: UserId, customer: CustomerId) -> Result<()> {
        let store = &self.store;
        let text = match forget_customer(store, customer, Requester::Moderator(from)).await? {
            Forgotten::Pending(work) => {
                self.audit(m, from, None, "forget", "refused: work in progress", true).await?;
                format!(
                    "Customer {customer} has work in progress, so nothing was erased: {work}. \
                     Finish or close it (/done on the case), then /forget {customer} again."
                )
            }
            Forgotten::Erased { counts, pseudonym } => {
                self.audit(m, from, None, "forget", &format!("erased {counts}"), true).await?;
                let index = match &self.learner {
                    Some(_) if self.remove_erased_from_index().await? > 0 => {
                        " The knowledge base could not be changed yet; the answers learned from them are removed \
                         as soon as it can."
                    }
                    _ => "",
                };
                let orders = if counts.get("orders_pseudonymised") > 0 {
                    format!(" Their orders keep the money facts under the pseudonym {pseudonym}.")
                } else {
                    String::new()
                };
                format!("🗑 Customer {customer}: erased {counts}.{orders}{index}")
            }
        };
        self.answer(m, &text).await?;
        Ok(())
    }

    pub(in crate::moderator) async fn forget_usage(&self, m: &Message, from: UserId, arg: &str) -> Result<()> {
        self.audit(m, from, None, "unknown", &m.text, true).await?;
        let text = if arg.is_empty() { USAGE.to_owned() } else { format!("/forget does not take {arg:?}. {USAGE}") };
        self.answer(m, &text).await?;
        Ok(())
    }

    /// Removes erased conversations' answers from the knowledge base
    /// (the contact task retries on every tick); returns how many failed.
    pub(in crate::moderator) async fn remove_erased_from_index(&self) -> Result<usize> {
        let Some(learner) = &self.learner else { return Ok(0) };
        let now = now_ms();
        Ok(remove_from_index(&self.store, &Unlearn(learner.as_ref()), now, now).await?)
    }
}

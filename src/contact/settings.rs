//! `[contact]` in the config file, and how it becomes a [`ContactConfig`].

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use super::{AccountBudget, ContactConfig, QuestionLimits};
use crate::config::rules::bounded_secs;
use crate::domain::Language;

/// `[contact]`: the assistant writes to customers whose account ID is
/// missing, ambiguous or refused, and finishes their orders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSection {
    /// Off: every account problem goes straight to the moderator.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A reminder this long after we asked without an answer.
    #[serde(default = "default_reminder")]
    pub reminder_after_secs: u64,
    /// The moderator gets the order this long after we asked without an answer.
    #[serde(default = "default_contact_escalate")]
    pub escalate_after_secs: u64,
    /// Never more messages than this to one customer per UTC day.
    #[serde(default = "default_max_messages")]
    pub max_messages_per_day: u32,
    /// Questions per customer per minute that reach the agent or the
    /// moderator; the rest are stored without an answer.
    #[serde(default = "default_questions_per_minute")]
    pub questions_per_minute: u32,
    /// Agent answers per customer per UTC day; past that a person answers.
    #[serde(default = "default_agent_turns_per_day")]
    pub agent_turns_per_day: u32,
    /// Agent turns of the whole account per minute and per hour, and new
    /// question cases for the moderators per minute and per hour: past
    /// any of them questions wait in a queue (oldest first; the moderators
    /// get one card per burst).
    #[serde(default = "default_agent_turns_per_minute")]
    pub agent_turns_per_minute: u32,
    #[serde(default = "default_agent_turns_per_hour")]
    pub agent_turns_per_hour: u32,
    #[serde(default = "default_question_cases_per_minute")]
    pub question_cases_per_minute: u32,
    #[serde(default = "default_question_cases_per_hour")]
    pub question_cases_per_hour: u32,
    /// Directory with `contact/*.ru.md` / `*.en.md` templates (built-in texts otherwise).
    pub prompts_dir: Option<PathBuf>,
    /// `ru` or `en`: for customers whose name and messages show no language (digits, emoji, "ok").
    #[serde(default = "default_language")]
    pub language: String,
}

impl Default for ContactSection {
    fn default() -> Self {
        toml::from_str("").expect("the empty [contact] is valid")
    }
}

fn default_true() -> bool {
    true
}
fn default_reminder() -> u64 {
    3600
}
fn default_contact_escalate() -> u64 {
    24 * 3600
}
fn default_max_messages() -> u32 {
    10
}
fn default_language() -> String {
    "ru".into()
}
fn default_questions_per_minute() -> u32 {
    QuestionLimits::default().per_minute
}
fn default_agent_turns_per_day() -> u32 {
    QuestionLimits::default().per_day
}
fn default_agent_turns_per_minute() -> u32 {
    AccountBudget::default().agent_turns_per_minute.get()
}
fn default_agent_turns_per_hour() -> u32 {
    AccountBudget::default().agent_turns_per_hour.get()
}
fn default_question_cases_per_minute() -> u32 {
    AccountBudget::default().question_cases_per_minute.get()
}
fn default_question_cases_per_hour() -> u32 {
    AccountBudget::default().question_cases_per_hour.get()
}

impl ContactSection {
    /// The contact settings, or `None` when contact is disabled.
    pub fn contact_config(&self) -> anyhow::Result<Option<ContactConfig>> {
        if !self.enabled {
            return Ok(None);
        }
        let default_language = Language::parse(&self.language)
            .with_context(|| format!("[contact] language must be \"ru\" or \"en\", not {:?}", self.language))?;
        if self.escalate_after_secs <= self.reminder_after_secs {
            bail!("[contact] escalate_after_secs must be longer than reminder_after_secs");
        }
        bounded_secs(&[
            ("[contact] reminder_after_secs", Some(self.reminder_after_secs)),
            ("[contact] escalate_after_secs", Some(self.escalate_after_secs)),
        ])?;
        let at_least_one = |name: &str, v: u32| {
            NonZeroU32::new(v).with_context(|| {
                format!("[contact] {name} must be at least 1 (0 would hold every question forever), not {v}")
            })
        };
        let account_budget = AccountBudget {
            agent_turns_per_minute: at_least_one("agent_turns_per_minute", self.agent_turns_per_minute)?,
            agent_turns_per_hour: at_least_one("agent_turns_per_hour", self.agent_turns_per_hour)?,
            question_cases_per_minute: at_least_one("question_cases_per_minute", self.question_cases_per_minute)?,
            question_cases_per_hour: at_least_one("question_cases_per_hour", self.question_cases_per_hour)?,
        };
        Ok(Some(ContactConfig {
            reminder_after: Duration::from_secs(self.reminder_after_secs),
            escalate_after: Duration::from_secs(self.escalate_after_secs),
            max_messages_per_day: self.max_messages_per_day,
            question_limits: QuestionLimits {
                per_minute: self.questions_per_minute.max(1),
                per_day: self.agent_turns_per_day,
            },
            account_budget,
            prompts_dir: self.prompts_dir.clone(),
            default_language,
            ..ContactConfig::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_budget_has_defaults_and_refuses_zero_by_name() {
        let cfg = ContactSection::default().contact_config().unwrap().unwrap();
        assert_eq!(cfg.account_budget, AccountBudget::default());
        let section: ContactSection =
            toml::from_str("agent_turns_per_minute = 5\nquestion_cases_per_hour = 7").unwrap();
        let budget = section.contact_config().unwrap().unwrap().account_budget;
        assert_eq!((budget.agent_turns_per_minute.get(), budget.question_cases_per_hour.get()), (5, 7));
        let section: ContactSection = toml::from_str("question_cases_per_minute = 0").unwrap();
        let err = format!("{:#}", section.contact_config().unwrap_err());
        assert!(err.contains("[contact] question_cases_per_minute must be at least 1"), "{err}");
    }
}

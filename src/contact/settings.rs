//! `[contact]` in the config file, and how it becomes a [`ContactConfig`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use super::{ContactConfig, QuestionLimits};
use crate::domain::Language;
use crate::settings::bounded_secs;

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
        Ok(Some(ContactConfig {
            reminder_after: Duration::from_secs(self.reminder_after_secs),
            escalate_after: Duration::from_secs(self.escalate_after_secs),
            max_messages_per_day: self.max_messages_per_day,
            question_limits: QuestionLimits {
                per_minute: self.questions_per_minute.max(1),
                per_day: self.agent_turns_per_day,
            },
            prompts_dir: self.prompts_dir.clone(),
            default_language,
            ..ContactConfig::default()
        }))
    }
}

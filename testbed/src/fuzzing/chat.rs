//! What people type to us in Telegram: a customer's message (which may be
//! an account ID or a question for the agent) and a moderator's message in
//! the case chat (a command, an account ID or an answer to relay).

use std::sync::LazyLock;

use tribute_assistant::agent::policy::Policy;
use tribute_assistant::agent::AgentSettings;
use tribute_assistant::domain::{AccountId, Language};
use tribute_assistant::knowledge::lexical::split_by_script;
use tribute_assistant::knowledge::Redactor;
use tribute_assistant::moderator::cmd::{parse, Command, Input};
use tribute_assistant::tribute::{AccountExtraction, AccountPattern};

/// The default digit-run pattern and a publisher's regex with a group.
static PATTERNS: LazyLock<[AccountPattern; 2]> =
    LazyLock::new(|| [AccountPattern::default(), AccountPattern::new("(?i)acc-([a-z0-9]+)").expect("valid pattern")]);

/// The agent's rules with the default hard topics.
static POLICY: LazyLock<Policy> =
    LazyLock::new(|| Policy::new(&AgentSettings::retrieval_only(), &tribute_assistant::agent::Prompts::default()));

/// A customer's message; after a NUL, the previous question (for the
/// repeated-question rule).
pub(super) fn customer_message(data: &[u8]) {
    let (message, previous) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (super::text(&data[..nul]), Some(super::text(&data[nul + 1..]))),
        None => (super::text(data), None),
    };
    for pattern in PATTERNS.iter() {
        match pattern.extract(&message) {
            AccountExtraction::Found(id) => assert_in_text(&id, &message),
            AccountExtraction::Ambiguous(ids) => {
                assert!(ids.len() >= 2, "ambiguous needs two distinct IDs: {ids:?}");
                ids.iter().for_each(|id| assert_in_text(id, &message));
            }
            AccountExtraction::Missing => {}
        }
    }
    let _ = Language::detect(&message);
    let _ = split_by_script(&message);
    let _ = POLICY.question_rules(&message, previous.as_deref());
    // The knowledge base learns from conversations only after redaction.
    let _ = Redactor::new(None).redact(&message);
}

/// A moderator's message in the case chat.
pub(super) fn moderator_command(data: &[u8]) {
    let message = super::text(data);
    for pattern in PATTERNS.iter() {
        match parse(&message, pattern) {
            Input::Account(id) => assert_in_text(&id, &message),
            Input::Command(Command::Case { page, .. }) => assert!(page >= 1, "pages count from 1"),
            Input::Command(_) => assert!(message.trim().starts_with(['/', '👍'])),
            Input::Text(t) => assert_eq!(t, message.trim(), "text is relayed as written"),
        }
    }
}

fn assert_in_text(id: &AccountId, text: &str) {
    assert!(text.contains(id.as_str()), "account {id:?} is not in the text");
}

//! The desk's commands, one file each (what the command's words mean and
//! what it does), and what a moderator's message in the case chat means:
//! [`parse`] is pure, text in, intent out; the desk dispatches on it.

mod account;
mod case;
mod cases;
mod done;
mod forget;
pub(super) mod learn;
mod note;
mod reject;
mod relay;
mod report;
mod retry;

use crate::domain::AccountId;
use crate::retention::CustomerId;
use crate::tribute::{AccountExtraction, AccountPattern};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Handled by hand; close the case.
    Done,
    /// Give the order up (it fails) with a reason.
    Reject(String),
    /// Ask the backend again with the order's account ID.
    Retry,
    /// An internal note on the case (never sent to the customer).
    Note(String),
    /// List the open cases.
    Cases,
    /// Show one case (by its short id), page `page` (1-based) of a long one.
    Case { id: String, page: usize },
    /// On a case card: preview the case's question and the team's answer to
    /// it for the knowledge base (`/learn` or 👍). In reply to a preview:
    /// confirm it, like [`Command::LearnYes`].
    Learn,
    /// Preview a content gap of the report (`/learn G123`): the question of
    /// agent turn 123 and the moderator's answer to it.
    LearnGap(i64),
    /// Confirm the `/learn` preview this replies to: store its pair (`/learn yes`).
    LearnYes,
    /// `/learn` with an argument it does not take.
    LearnUsage(String),
    /// The report's summary for the last `span` (`/report`, `/report 30d`).
    Report(String),
    /// Erase a customer's personal data (`/forget 123456789`).
    Forget(CustomerId),
    /// `/forget` without a Telegram user id.
    ForgetUsage(String),
    /// A `/word` we do not know.
    Unknown(String),
}

/// A moderator's message, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Command(Command),
    /// Nothing but an account ID (optionally `ID:`/`#` around it).
    Account(AccountId),
    /// Anything else: relayed to the customer as the team's answer.
    Text(String),
}

pub fn parse(text: &str, pattern: &AccountPattern) -> Input {
    let t = text.trim();
    if t == "👍" {
        return Input::Command(Command::Learn);
    }
    if let Some(rest) = t.strip_prefix('/') {
        let (word, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        // `/done@our_account` in groups with several accounts.
        let word = word.split('@').next().unwrap_or_default().to_lowercase();
        let arg = arg.trim().to_owned();
        return Input::Command(match word.as_str() {
            "done" => Command::Done,
            "reject" => Command::Reject(arg),
            "retry" => Command::Retry,
            "note" => Command::Note(arg),
            "cases" => Command::Cases,
            "case" => case::parse(&arg),
            "learn" => learn::parse(arg),
            "report" => Command::Report(arg),
            "forget" => forget::parse(arg),
            _ => Command::Unknown(word),
        });
    }
    if let AccountExtraction::Found(id) = pattern.extract(t) {
        let rest = t.replacen(id.as_str(), "", 1).to_lowercase();
        let rest = rest
            .replace("account", "")
            .replace("аккаунт", "")
            .replace("id", "")
            .replace(|c: char| c.is_whitespace() || "#:№.,-=".contains(c), "");
        if rest.is_empty() {
            return Input::Account(id);
        }
    }
    Input::Text(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Input {
        parse(s, &AccountPattern::default())
    }

    #[test]
    fn commands_ids_and_text() {
        assert_eq!(p("/done"), Input::Command(Command::Done));
        assert_eq!(p("/reject@shop_helper refund issued"), Input::Command(Command::Reject("refund issued".into())));
        assert_eq!(p(" /case C12 "), Input::Command(Command::Case { id: "C12".into(), page: 1 }));
        assert_eq!(p("/case C12 3"), Input::Command(Command::Case { id: "C12".into(), page: 3 }));
        assert_eq!(p("/case c12 p2"), Input::Command(Command::Case { id: "c12".into(), page: 2 }));
        assert_eq!(p("/case C12 0"), Input::Command(Command::Case { id: "C12".into(), page: 1 }));
        assert_eq!(p("/learn"), Input::Command(Command::Learn));
        assert_eq!(p("/learn G42"), Input::Command(Command::LearnGap(42)));
        assert_eq!(p("/learn yes"), Input::Command(Command::LearnYes));
        assert_eq!(p("/learn@shop_helper Да"), Input::Command(Command::LearnYes));
        assert_eq!(p("/learn G0"), Input::Command(Command::LearnUsage("G0".into())));
        assert_eq!(p("/learn everything"), Input::Command(Command::LearnUsage("everything".into())));
        assert_eq!(p("/report"), Input::Command(Command::Report(String::new())));
        assert_eq!(p("/report@shop_helper 30d"), Input::Command(Command::Report("30d".into())));
        assert_eq!(p(" 👍 "), Input::Command(Command::Learn));
        assert_eq!(p("/forget 123456789"), Input::Command(Command::Forget("123456789".parse().unwrap())));
        assert_eq!(p("/forget@shop_helper @ivan"), Input::Command(Command::ForgetUsage("@ivan".into())));
        assert_eq!(p("/forget"), Input::Command(Command::ForgetUsage(String::new())));
        assert_eq!(p("/frobnicate"), Input::Command(Command::Unknown("frobnicate".into())));
        assert_eq!(p("123456"), Input::Account(AccountId::parse("123456").unwrap()));
        assert_eq!(p("ID: #123456"), Input::Account(AccountId::parse("123456").unwrap()));
        assert!(matches!(p("Your account 123456 is fine, please wait"), Input::Text(_)));
        assert!(matches!(p("12 34"), Input::Text(_)));
    }
}

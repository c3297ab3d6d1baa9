//! The dialogue's timer decisions as one pure function: given where the
//! dialogue is and what the store says about the customer's orders at a
//! tick, what it becomes and which one message (if any) that takes. The
//! contact task reads the facts, calls [`step`], performs the effect and
//! persists the next state only when the effect went through — so every
//! rule here (one reminder, escalation only after it, back to idle when
//! nothing is pending) is tested without a store, a clock or Telegram.

use crate::domain::{AccountId, DialogueState};

/// What the store says about one customer's open orders at a tick.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    /// Some order waits for an account ID from this customer.
    pub awaiting: bool,
    /// The backend is checking an account ID the customer gave.
    pub validating: Option<AccountId>,
    /// A moderator's case still has one of the customer's orders.
    pub with_moderator: bool,
    /// The case of a `WithModerator` dialogue is still open.
    pub case_open: bool,
}

/// The dialogue's timers (unix ms), from `[contact]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub reminder_after_ms: i64,
    pub escalate_after_ms: i64,
}

/// The one message a step takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Ask for the account IDs of the awaiting orders.
    Ask,
    /// The single reminder.
    Remind,
    /// Hand the awaiting orders to a moderator: the customer is silent.
    EscalateSilent,
}

/// The state to persist once the effect (if any) went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub next: DialogueState,
    pub effect: Option<Effect>,
}

pub fn step(state: &DialogueState, facts: &Facts, now: i64, t: Timers) -> Step {
    let stay = |effect| Step { next: state.clone(), effect };
    if facts.awaiting {
        return match *state {
            DialogueState::AwaitingAccount { asked_at, reminded: false } if now >= asked_at + t.reminder_after_ms => {
                Step { next: DialogueState::AwaitingAccount { asked_at, reminded: true }, effect: Some(Effect::Remind) }
            }
            DialogueState::AwaitingAccount { asked_at, reminded: true } if now >= asked_at + t.escalate_after_ms => {
                stay(Some(Effect::EscalateSilent))
            }
            DialogueState::AwaitingAccount { .. } => stay(None),
            _ => Step {
                next: DialogueState::AwaitingAccount { asked_at: now, reminded: false },
                effect: Some(Effect::Ask),
            },
        };
    }
    if let Some(account) = &facts.validating {
        return match state {
            DialogueState::Validating { .. } => stay(None),
            _ => Step { next: DialogueState::Validating { account: account.clone(), since: now }, effect: None },
        };
    }
    match state {
        DialogueState::WithModerator { .. } if facts.case_open || facts.with_moderator => stay(None),
        _ => Step { next: DialogueState::Idle, effect: None },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const T: Timers = Timers { reminder_after_ms: 3_600_000, escalate_after_ms: 86_400_000 };

    fn awaiting() -> Facts {
        Facts { awaiting: true, ..Facts::default() }
    }

    #[test]
    fn asks_then_reminds_once_then_escalates() {
        let s = step(&DialogueState::Idle, &awaiting(), 0, T);
        assert_eq!(s.effect, Some(Effect::Ask));
        assert_eq!(step(&s.next, &awaiting(), 3_599_999, T).effect, None);
        let s = step(&s.next, &awaiting(), 3_600_000, T);
        assert_eq!(s.effect, Some(Effect::Remind));
        assert_eq!(step(&s.next, &awaiting(), 3_600_001, T).effect, None, "one reminder");
        assert_eq!(step(&s.next, &awaiting(), 86_400_000, T).effect, Some(Effect::EscalateSilent));
    }

    #[test]
    fn validating_and_moderator_states_follow_the_facts() {
        let account = AccountId::parse("123456").unwrap();
        let facts = Facts { validating: Some(account.clone()), ..Facts::default() };
        assert_eq!(step(&DialogueState::Idle, &facts, 5, T).next, DialogueState::Validating { account, since: 5 });
        let with = DialogueState::WithModerator { case_id: 1, since: 0 };
        let open = Facts { case_open: true, ..Facts::default() };
        assert_eq!(step(&with, &open, 9, T).next, with);
        assert_eq!(step(&with, &Facts::default(), 9, T).next, DialogueState::Idle);
    }

    fn any_state() -> impl Strategy<Value = DialogueState> {
        prop_oneof![
            Just(DialogueState::Idle),
            (0i64..200_000_000, any::<bool>())
                .prop_map(|(asked_at, reminded)| DialogueState::AwaitingAccount { asked_at, reminded }),
            (0i64..200_000_000).prop_map(|since| DialogueState::WithModerator { case_id: 1, since }),
        ]
    }

    fn any_facts() -> impl Strategy<Value = Facts> {
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(awaiting, validating, m, open)| Facts {
            awaiting,
            validating: validating.then(|| AccountId::parse("123456").unwrap()),
            with_moderator: m,
            case_open: open,
        })
    }

    proptest! {
        #[test]
        fn the_rules_hold_for_any_state_facts_and_time(state in any_state(), facts in any_facts(), now in 0i64..400_000_000) {
            let s = step(&state, &facts, now, T);
            // Nothing pending and no moderator: the dialogue rests.
            if !facts.awaiting && facts.validating.is_none() && !facts.case_open && !facts.with_moderator {
                prop_assert_eq!(&s.next, &DialogueState::Idle);
                prop_assert_eq!(s.effect, None);
            }
            match s.effect {
                Some(Effect::Remind) => {
                    let asked = matches!(state, DialogueState::AwaitingAccount { reminded: false, .. });
                    prop_assert!(asked, "a reminder only after asking, once");
                }
                Some(Effect::EscalateSilent) => {
                    let ok = matches!(state, DialogueState::AwaitingAccount { asked_at, reminded: true }
                        if now >= asked_at + T.escalate_after_ms);
                    prop_assert!(ok, "escalation only after the reminder and the timeout");
                }
                Some(Effect::Ask) => {
                    let waiting = matches!(state, DialogueState::AwaitingAccount { .. });
                    prop_assert!(!waiting, "asks only once per wait");
                }
                None => {}
            }
            // A step never asks when nothing waits for the customer.
            prop_assert!(facts.awaiting || s.effect.is_none());
        }
    }
}

//! A customer's dialogue as one pure function: given its state and what
//! happened — a tick, with what the store says about the customer's orders,
//! or a message from the customer — what the dialogue becomes and what it
//! does. The contact task gathers the facts, calls [`step`], performs the
//! effects and persists the next state only when they went through, so
//! every rule (one reminder, escalation only after it, an account ID only
//! for orders that wait for one, a message to the moderator who has the
//! case) is tested here without a store, a clock or Telegram.

use crate::domain::{AccountId, DialogueState, EscalationReason, LinkStatus};
use crate::tribute::AccountExtraction;

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

/// What happened to the dialogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The periodic look: the facts as the store has them now.
    Tick(Facts),
    /// The customer wrote. `extraction`: the account IDs in the text.
    Wrote { extraction: AccountExtraction, facts: Facts },
}

/// The dialogue's timers (unix ms), from `[contact]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub reminder_after_ms: i64,
    pub escalate_after_ms: i64,
}

/// What a step does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Ask for the account IDs of the awaiting orders.
    Ask,
    /// The single reminder.
    Remind,
    /// Hand the awaiting orders to a moderator: the customer is silent.
    EscalateSilent,
    /// The customer's account ID for the awaiting orders.
    TakeAccount(AccountId),
    /// Several IDs in one message: ask which one.
    AskWhichOne(Vec<AccountId>),
    /// No ID in an answer to our question: ask again.
    AskAgain,
    /// The message is a question (for the agent, or a person); with
    /// `acknowledge`, tell the customer when a person gets it.
    Question { acknowledge: bool },
    /// The message goes to the moderator who has the dialogue's open case
    /// (a late account ID in it is taken there).
    ToCase { case_id: i64 },
}

/// The state to persist once the effects went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub next: DialogueState,
    pub effects: Vec<Effect>,
}

impl Step {
    fn stay(state: &DialogueState, effects: Vec<Effect>) -> Self {
        Step { next: state.clone(), effects }
    }
}

pub fn step(state: &DialogueState, event: &Event, now: i64, t: Timers) -> Step {
    match event {
        Event::Tick(facts) => tick(state, facts, now, t),
        Event::Wrote { extraction, facts } => wrote(state, extraction, facts, now),
    }
}

fn tick(state: &DialogueState, facts: &Facts, now: i64, t: Timers) -> Step {
    if facts.awaiting {
        return match *state {
            DialogueState::AwaitingAccount { asked_at, reminded: false } if now >= asked_at + t.reminder_after_ms => {
                Step {
                    next: DialogueState::AwaitingAccount { asked_at, reminded: true },
                    effects: vec![Effect::Remind],
                }
            }
            DialogueState::AwaitingAccount { asked_at, reminded: true } if now >= asked_at + t.escalate_after_ms => {
                Step::stay(state, vec![Effect::EscalateSilent])
            }
            DialogueState::AwaitingAccount { .. } => Step::stay(state, vec![]),
            _ => Step {
                next: DialogueState::AwaitingAccount { asked_at: now, reminded: false },
                effects: vec![Effect::Ask],
            },
        };
    }
    if let Some(account) = &facts.validating {
        return match state {
            DialogueState::Validating { .. } => Step::stay(state, vec![]),
            _ => Step { next: DialogueState::Validating { account: account.clone(), since: now }, effects: vec![] },
        };
    }
    match state {
        DialogueState::WithModerator { .. } if facts.case_open || facts.with_moderator => Step::stay(state, vec![]),
        _ => Step { next: DialogueState::Idle, effects: vec![] },
    }
}

fn wrote(state: &DialogueState, extraction: &AccountExtraction, facts: &Facts, now: i64) -> Step {
    if facts.awaiting {
        return match extraction {
            AccountExtraction::Found(id) => Step {
                next: DialogueState::Validating { account: id.clone(), since: now },
                effects: vec![Effect::TakeAccount(id.clone())],
            },
            AccountExtraction::Ambiguous(ids) => Step::stay(state, vec![Effect::AskWhichOne(ids.clone())]),
            AccountExtraction::Missing => {
                Step::stay(state, vec![Effect::Question { acknowledge: false }, Effect::AskAgain])
            }
        };
    }
    match *state {
        DialogueState::WithModerator { case_id, .. } if facts.case_open => {
            Step::stay(state, vec![Effect::ToCase { case_id }])
        }
        _ => Step::stay(state, vec![Effect::Question { acknowledge: true }]),
    }
}

/// What the store says about an order that came back to its customer
/// (its `needs_customer` event): why, its link to the customer's dialogue,
/// and its open case, if a moderator has one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Returned {
    pub reason: Option<EscalationReason>,
    pub link: Option<LinkStatus>,
    pub case: Option<OpenCase>,
}

/// The order's open case, as far as the return concerns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenCase {
    /// The backend was checking an account ID a moderator gave.
    pub pending_account: bool,
}

/// What the dialogue does with an order that came back to its customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// New to the dialogue: link it and ask (the next look at the dialogue asks).
    Adopt,
    /// Already asked and waiting: nothing to do.
    AlreadyAsked,
    /// The backend refused the ID the customer gave: ask again, or a person takes over.
    CustomerIdRefused,
    /// The backend refused an ID the customer sent while a moderator had the case: back to the case.
    LateIdRefused,
    /// The backend refused an ID a moderator gave: back to the moderator.
    ModeratorIdRefused,
    /// The account already has the product (a second payment): a person takes it; the customer is told.
    AlreadyFulfilled,
}

/// Who refused what decides where a returned order goes: an ID from the
/// moderator back to the moderator, a late ID from the customer back to
/// the case, an ID from the customer back to the customer.
pub fn returned(r: &Returned) -> Return {
    if let Some(case) = r.case {
        if case.pending_account {
            return Return::ModeratorIdRefused;
        }
        if r.link == Some(LinkStatus::Validating) {
            return Return::LateIdRefused;
        }
    }
    if r.reason == Some(EscalationReason::AlreadyFulfilled) {
        return Return::AlreadyFulfilled;
    }
    match r.link {
        Some(LinkStatus::Awaiting) => Return::AlreadyAsked,
        Some(LinkStatus::Validating) => Return::CustomerIdRefused,
        _ => Return::Adopt,
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
        let tick = Event::Tick(awaiting());
        let s = step(&DialogueState::Idle, &tick, 0, T);
        assert_eq!(s.effects, vec![Effect::Ask]);
        assert_eq!(step(&s.next, &tick, 3_599_999, T).effects, vec![]);
        let s = step(&s.next, &tick, 3_600_000, T);
        assert_eq!(s.effects, vec![Effect::Remind]);
        assert_eq!(step(&s.next, &tick, 3_600_001, T).effects, vec![], "one reminder");
        assert_eq!(step(&s.next, &tick, 86_400_000, T).effects, vec![Effect::EscalateSilent]);
    }

    #[test]
    fn a_message_is_an_account_id_only_for_waiting_orders_and_goes_to_an_open_case() {
        let id = AccountId::parse("123456").unwrap();
        let asked = DialogueState::AwaitingAccount { asked_at: 0, reminded: false };
        let wrote = |extraction, facts| Event::Wrote { extraction, facts };
        let s = step(&asked, &wrote(AccountExtraction::Found(id.clone()), awaiting()), 7, T);
        assert_eq!(s.effects, vec![Effect::TakeAccount(id.clone())]);
        assert_eq!(s.next, DialogueState::Validating { account: id.clone(), since: 7 });
        let s = step(&asked, &wrote(AccountExtraction::Missing, awaiting()), 7, T);
        assert_eq!(s.effects, vec![Effect::Question { acknowledge: false }, Effect::AskAgain]);
        assert_eq!(s.next, asked, "still waiting, the timers run on");
        // Nothing waits: an ID is just text, a question.
        let s = step(&DialogueState::Idle, &wrote(AccountExtraction::Found(id), Facts::default()), 7, T);
        assert_eq!(s.effects, vec![Effect::Question { acknowledge: true }]);
        let with = DialogueState::WithModerator { case_id: 4, since: 0 };
        let open = Facts { case_open: true, ..Facts::default() };
        assert_eq!(
            step(&with, &wrote(AccountExtraction::Missing, open), 7, T).effects,
            vec![Effect::ToCase { case_id: 4 }]
        );
        let closed = step(&with, &wrote(AccountExtraction::Missing, Facts::default()), 7, T);
        assert_eq!(closed.effects, vec![Effect::Question { acknowledge: true }], "a closed case: a new question");
    }

    #[test]
    fn validating_and_moderator_states_follow_the_facts() {
        let account = AccountId::parse("123456").unwrap();
        let facts = Event::Tick(Facts { validating: Some(account.clone()), ..Facts::default() });
        assert_eq!(step(&DialogueState::Idle, &facts, 5, T).next, DialogueState::Validating { account, since: 5 });
        let with = DialogueState::WithModerator { case_id: 1, since: 0 };
        let open = Event::Tick(Facts { case_open: true, ..Facts::default() });
        assert_eq!(step(&with, &open, 9, T).next, with);
        assert_eq!(step(&with, &Event::Tick(Facts::default()), 9, T).next, DialogueState::Idle);
    }

    #[test]
    fn a_returned_order_goes_back_to_whoever_gave_the_refused_id() {
        let r = |reason, link, case| returned(&Returned { reason, link, case });
        let case = Some(OpenCase { pending_account: false });
        let moderators = Some(OpenCase { pending_account: true });
        let (validating, awaiting) = (Some(LinkStatus::Validating), Some(LinkStatus::Awaiting));
        let unknown = Some(EscalationReason::UnknownAccount);
        assert_eq!(r(unknown, validating, moderators), Return::ModeratorIdRefused);
        assert_eq!(r(unknown, validating, case), Return::LateIdRefused);
        assert_eq!(r(unknown, validating, None), Return::CustomerIdRefused);
        assert_eq!(r(unknown, awaiting, None), Return::AlreadyAsked);
        assert_eq!(r(unknown, None, None), Return::Adopt);
        assert_eq!(r(unknown, Some(LinkStatus::Moderator), case), Return::Adopt, "a moderator's case ended: ask anew");
        let twice = Some(EscalationReason::AlreadyFulfilled);
        assert_eq!(r(twice, validating, None), Return::AlreadyFulfilled, "right ID, second payment: not a typo");
        assert_eq!(r(twice, validating, moderators), Return::ModeratorIdRefused);
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
        fn the_timer_rules_hold_for_any_state_facts_and_time(state in any_state(), facts in any_facts(), now in 0i64..400_000_000) {
            let s = step(&state, &Event::Tick(facts.clone()), now, T);
            // Nothing pending and no moderator: the dialogue rests.
            if !facts.awaiting && facts.validating.is_none() && !facts.case_open && !facts.with_moderator {
                prop_assert_eq!(&s.next, &DialogueState::Idle);
                prop_assert!(s.effects.is_empty());
            }
            prop_assert!(s.effects.len() <= 1, "at most one message per tick");
            match s.effects.first() {
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
                Some(other) => prop_assert!(false, "a tick never {:?}", other),
                None => {}
            }
            // A step never asks when nothing waits for the customer.
            prop_assert!(facts.awaiting || s.effects.is_empty());
        }

        #[test]
        fn a_message_never_moves_a_timer_and_gives_an_account_only_to_waiting_orders(
            state in any_state(), facts in any_facts(), now in 0i64..400_000_000, found in any::<bool>()
        ) {
            let extraction = if found {
                AccountExtraction::Found(AccountId::parse("654321").unwrap())
            } else {
                AccountExtraction::Missing
            };
            let s = step(&state, &Event::Wrote { extraction, facts: facts.clone() }, now, T);
            let takes = s.effects.iter().any(|e| matches!(e, Effect::TakeAccount(_)));
            prop_assert_eq!(takes, found && facts.awaiting);
            if !takes {
                prop_assert_eq!(&s.next, &state, "only an account ID changes the state");
            }
            prop_assert!(!s.effects.iter().any(|e| matches!(e, Effect::Ask | Effect::Remind | Effect::EscalateSilent)));
        }
    }
}

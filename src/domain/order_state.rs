use std::fmt;

/// Where an order is in its life. Persisted as the lowercase snake-case
/// name; every change goes through [`OrderState::transition`] so an
/// impossible jump (say, `received` → `confirmed`) cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Stored and parsed; nothing sent anywhere yet.
    Received,
    /// We are about to call (or are calling) the backend; a restart in
    /// this state calls it again with the same idempotency key.
    ActivationRequested,
    /// The backend activated the product; the Tribute reply is next.
    Activated,
    /// Our reply to the Tribute notification is sent; waiting for the
    /// bot's "Send" button and pressing it.
    Replied,
    /// The "Send" button was pressed: Tribute delivered our answer. Final.
    Confirmed,
    /// The account ID must come from the customer (contact flow).
    NeedsCustomer,
    /// A human moderator has to finish this order.
    Escalated,
    /// Given up (e.g. the backend rejects our request as invalid); only a
    /// moderator's `/retry` takes it up again.
    Failed,
    /// Tribute refunded the payment: nothing more may be activated or sent
    /// for it, whoever gives an account ID later. Final.
    Refunded,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an order cannot go from {from} to {to}")]
pub struct TransitionError {
    pub from: OrderState,
    pub to: OrderState,
}

impl OrderState {
    pub const ALL: [OrderState; 9] = [
        OrderState::Received,
        OrderState::ActivationRequested,
        OrderState::Activated,
        OrderState::Replied,
        OrderState::Confirmed,
        OrderState::NeedsCustomer,
        OrderState::Escalated,
        OrderState::Failed,
        OrderState::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Received => "received",
            OrderState::ActivationRequested => "activation_requested",
            OrderState::Activated => "activated",
            OrderState::Replied => "replied",
            OrderState::Confirmed => "confirmed",
            OrderState::NeedsCustomer => "needs_customer",
            OrderState::Escalated => "escalated",
            OrderState::Failed => "failed",
            OrderState::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No automatic work is left: the order is done or waits for a person.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            OrderState::Confirmed
                | OrderState::Failed
                | OrderState::Refunded
                | OrderState::Escalated
                | OrderState::NeedsCustomer
        )
    }

    /// Can a refund settle the order now? Not while an activation or the
    /// Tribute exchange is in flight: those end first, then the refund
    /// (and a deactivation, when there was an activation) applies.
    pub fn can_be_refunded(self) -> bool {
        matches!(self, OrderState::NeedsCustomer | OrderState::Escalated | OrderState::Failed | OrderState::Confirmed)
    }

    pub fn can_go_to(self, to: OrderState) -> bool {
        use OrderState::*;
        matches!(
            (self, to),
            (Received, ActivationRequested | NeedsCustomer | Escalated)
                | (ActivationRequested, Activated | NeedsCustomer | Escalated | Failed)
                | (Activated, Replied | Escalated)
                | (Replied, Confirmed | Escalated)
                | (NeedsCustomer, ActivationRequested | Escalated | Failed)
                // An escalated order with an activation resumes where it
                // stopped (its account can no longer change).
                | (Escalated, ActivationRequested | Activated | Replied | Failed)
                // `/retry` of an order the backend rejected (e.g. after the
                // publisher fixed the product on their side).
                | (Failed, ActivationRequested)
        ) || (to == Refunded && self.can_be_refunded())
    }

    pub fn transition(self, to: OrderState) -> Result<OrderState, TransitionError> {
        if self.can_go_to(to) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an order (or a Tribute message) was handed to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationReason {
    MissingAccount,
    AmbiguousAccount,
    NoPendingOrder,
    UnknownAccount,
    /// The backend says the account already received this product for an
    /// earlier payment and nothing is pending: most likely a second payment.
    /// Another account ID would not help, so a person decides.
    AlreadyFulfilled,
    BackendRejected,
    ButtonNeverCame,
    MalformedOrder,
    UnrecognisedMessage,
    // Customer contact.
    /// A message to the customer failed for good (privacy, blocked, PEER_FLOOD, deleted).
    CustomerUnreachable,
    /// The customer did not answer before the second timeout.
    CustomerSilent,
    /// The backend refused the account IDs the customer gave three times.
    AccountRejectedThrice,
    /// We may not write to this customer again today.
    MessageCapReached,
    /// The customer asked something nobody automatic could answer.
    CustomerQuestion,
    /// Telegram refused a step of the order for good (e.g. the reply is too long).
    TelegramRefused,
    /// More questions at once than the account-wide budget of agent turns
    /// and new question cases: they wait in a queue (one card per burst).
    QuestionsQueued,
    /// The backend refused our signature although the request was fresh:
    /// a rotated secret or clocks apart. Retried; a person must fix it.
    BackendUnauthorized,
    // Tribute webhooks.
    /// A signed webhook body we could not read.
    WebhookInvalid,
    /// The webhook's amount differs from the Telegram order's.
    WebhookAmountMismatch,
    /// Tribute took a payment we never saw a Telegram order for.
    WebhookUnmatchedPurchase,
    /// A payment was refunded (the card says what was taken back).
    WebhookRefund,
    /// A message failed every time it was handled and was set aside.
    Unhandled,
    /// The Send button went away (or its message did) and the Tribute chat
    /// does not show our reply delivered: nobody knows it reached the customer.
    SendUnconfirmed,
    /// Orders have waited too long for a failing backend or Telegram (one
    /// case per outage, listing them; `orders::outage`).
    Outage,
    /// No Telegram order matched a payment before the deadline
    /// (`[retention] unmatched_purchase_hours`): it is not matched
    /// automatically any more.
    WebhookMatchingStopped,
}

impl EscalationReason {
    /// Every reason, so a stored name can be read back ([`Self::parse`]).
    pub const ALL: [EscalationReason; 25] = [
        EscalationReason::MissingAccount,
        EscalationReason::AmbiguousAccount,
        EscalationReason::NoPendingOrder,
        EscalationReason::UnknownAccount,
        EscalationReason::AlreadyFulfilled,
        EscalationReason::BackendRejected,
        EscalationReason::ButtonNeverCame,
        EscalationReason::MalformedOrder,
        EscalationReason::UnrecognisedMessage,
        EscalationReason::CustomerUnreachable,
        EscalationReason::CustomerSilent,
        EscalationReason::AccountRejectedThrice,
        EscalationReason::MessageCapReached,
        EscalationReason::CustomerQuestion,
        EscalationReason::TelegramRefused,
        EscalationReason::QuestionsQueued,
        EscalationReason::BackendUnauthorized,
        EscalationReason::WebhookInvalid,
        EscalationReason::WebhookAmountMismatch,
        EscalationReason::WebhookUnmatchedPurchase,
        EscalationReason::WebhookRefund,
        EscalationReason::Unhandled,
        EscalationReason::SendUnconfirmed,
        EscalationReason::Outage,
        EscalationReason::WebhookMatchingStopped,
    ];

    /// The reason stored as `name` ([`Self::as_str`]).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EscalationReason::MissingAccount => "missing_account",
            EscalationReason::AmbiguousAccount => "ambiguous_account",
            EscalationReason::NoPendingOrder => "no_pending_order",
            EscalationReason::UnknownAccount => "unknown_account",
            EscalationReason::AlreadyFulfilled => "already_fulfilled",
            EscalationReason::BackendRejected => "backend_rejected",
            EscalationReason::ButtonNeverCame => "button_never_came",
            EscalationReason::MalformedOrder => "malformed_order",
            EscalationReason::UnrecognisedMessage => "unrecognised_message",
            EscalationReason::CustomerUnreachable => "customer_unreachable",
            EscalationReason::CustomerSilent => "customer_silent",
            EscalationReason::AccountRejectedThrice => "account_rejected_thrice",
            EscalationReason::MessageCapReached => "message_cap_reached",
            EscalationReason::CustomerQuestion => "customer_question",
            EscalationReason::TelegramRefused => "telegram_refused",
            EscalationReason::QuestionsQueued => "questions_queued",
            EscalationReason::BackendUnauthorized => "backend_unauthorized",
            EscalationReason::WebhookInvalid => "webhook_invalid",
            EscalationReason::WebhookAmountMismatch => "webhook_amount_mismatch",
            EscalationReason::WebhookUnmatchedPurchase => "webhook_unmatched_purchase",
            EscalationReason::WebhookRefund => "webhook_refund",
            EscalationReason::Unhandled => "unhandled",
            EscalationReason::SendUnconfirmed => "send_unconfirmed",
            EscalationReason::Outage => "outage",
            EscalationReason::WebhookMatchingStopped => "webhook_matching_stopped",
        }
    }

    /// A problem with the order's account ID that its customer can solve
    /// by sending one (the contact flow asks them).
    pub fn is_account_problem(self) -> bool {
        matches!(
            self,
            EscalationReason::MissingAccount
                | EscalationReason::AmbiguousAccount
                | EscalationReason::NoPendingOrder
                | EscalationReason::UnknownAccount
        )
    }

    /// One line a moderator reads first on the case card.
    pub fn explain(self) -> &'static str {
        match self {
            EscalationReason::MissingAccount => "the customer wrote no account ID in Order Details",
            EscalationReason::AmbiguousAccount => "Order Details contain several different account IDs",
            EscalationReason::NoPendingOrder => "the backend has no pending order for this account and product",
            EscalationReason::UnknownAccount => "the backend does not know this account ID",
            EscalationReason::AlreadyFulfilled => {
                "the backend says this account already received this product for an earlier payment and \
                 nothing is pending: most likely a second payment (refund it in Tribute, or deliver by hand)"
            }
            EscalationReason::BackendRejected => "the backend rejected the activation request as invalid",
            EscalationReason::ButtonNeverCame => "Tribute never showed the Send button after our reply",
            EscalationReason::MalformedOrder => "a Custom Product Order message could not be parsed",
            EscalationReason::UnrecognisedMessage => "the Tribute bot sent a message the parser does not recognise",
            EscalationReason::CustomerUnreachable => "we cannot write to the customer",
            EscalationReason::CustomerSilent => "the customer did not answer our questions and the reminder",
            EscalationReason::AccountRejectedThrice => "the backend refused the customer's account ID three times",
            EscalationReason::MessageCapReached => "we reached today's message limit for this customer",
            EscalationReason::CustomerQuestion => "the customer asked a question",
            EscalationReason::TelegramRefused => "Telegram refused a step of the order for good",
            EscalationReason::QuestionsQueued => {
                "more questions at once than the agent's and the moderators' budget: they wait in a queue"
            }
            EscalationReason::BackendUnauthorized => {
                "the backend refuses our signature (rotated secret or clocks apart?); orders wait and are retried"
            }
            EscalationReason::WebhookInvalid => "a signed Tribute webhook could not be read",
            EscalationReason::WebhookAmountMismatch => "the paid amount differs from the Telegram order",
            EscalationReason::WebhookUnmatchedPurchase => "Tribute took a payment we never saw an order for",
            EscalationReason::WebhookRefund => "Tribute refunded a payment",
            EscalationReason::Unhandled => {
                "handling it failed every time it was tried; nothing more is done with it automatically"
            }
            EscalationReason::SendUnconfirmed => {
                "the Send button is gone but the Tribute chat does not show our reply delivered; \
                 check the chat, deliver by hand if needed, then /done"
            }
            EscalationReason::Outage => "orders wait for a service that keeps failing; each is retried by itself",
            EscalationReason::WebhookMatchingStopped => {
                "no Telegram order matched a payment in time; it is no longer matched automatically"
            }
        }
    }
}

impl fmt::Display for EscalationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_escalation_reason_reads_back_from_its_name() {
        for r in EscalationReason::ALL {
            assert_eq!(EscalationReason::parse(r.as_str()), Some(r));
        }
        let names: std::collections::HashSet<_> = EscalationReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), EscalationReason::ALL.len());
        assert_eq!(EscalationReason::parse("nonsense"), None);
    }
    use OrderState::*;

    #[test]
    fn happy_path_is_allowed_and_shortcuts_are_not() {
        let path = [Received, ActivationRequested, Activated, Replied, Confirmed];
        for w in path.windows(2) {
            assert_eq!(w[0].transition(w[1]), Ok(w[1]));
        }
        assert!(Received.transition(Confirmed).is_err());
        assert!(Activated.transition(Failed).is_err(), "an activated order must be finished, not dropped");
        assert!(Confirmed.transition(ActivationRequested).is_err());
        assert_eq!(Escalated.transition(Replied), Ok(Replied), "an escalated activated order resumes at Send");
        for s in [Received, ActivationRequested, Activated, Replied, Refunded] {
            assert!(s.transition(Refunded).is_err(), "{s} cannot be refunded while in flight or twice");
        }
        for s in [NeedsCustomer, Escalated, Failed, Confirmed] {
            assert_eq!(s.transition(Refunded), Ok(Refunded));
        }
        for to in OrderState::ALL {
            assert!(Refunded.transition(to).is_err(), "refunded is final");
        }
        for s in OrderState::ALL {
            assert_eq!(OrderState::parse(s.as_str()), Some(s));
        }
    }
}

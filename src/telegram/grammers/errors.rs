//! Telegram's errors (grammers' `InvocationError`) as the core's
//! [`MessengerError`]. Pure: the mapping depends only on the error and on
//! what was being done, so each refusal the contact flow acts on is tested.

use std::time::Duration;

use ::grammers_mtsender::{InvocationError, RpcError};

use crate::telegram::{ChatId, MessageId, MessengerError};

/// What the failing request was doing, for errors that name a chat or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Sending a message to `chat` (replying to `reply_to` if set).
    Send { chat: ChatId, reply_to: Option<MessageId> },
    /// Pressing a callback button on `message`.
    Press { chat: ChatId, message: MessageId },
    /// Reading history or messages of `chat`.
    Read { chat: ChatId },
    /// Anything else (updates, login checks).
    Other,
}

impl Op {
    fn chat(self) -> Option<ChatId> {
        match self {
            Op::Send { chat, .. } | Op::Press { chat, .. } | Op::Read { chat } => Some(chat),
            Op::Other => None,
        }
    }
}

/// Maps an RPC error.
pub fn map_rpc_error(e: &RpcError, op: Op) -> MessengerError {
    let chat = op.chat().unwrap_or_default();
    let name = e.name.as_str();
    // Flood waits: FLOOD_WAIT_X (420), FLOOD_PREMIUM_WAIT_X, SLOWMODE_WAIT_X (400).
    if e.code == 420 || matches!(name, "FLOOD_WAIT" | "FLOOD_PREMIUM_WAIT" | "SLOWMODE_WAIT" | "FLOOD_TEST_PHONE_WAIT")
    {
        return MessengerError::FloodWait(Duration::from_secs(u64::from(e.value.unwrap_or(1).max(1))));
    }
    match name {
        "PEER_FLOOD" => MessengerError::PeerFlood,
        "USER_PRIVACY_RESTRICTED" | "PRIVACY_PREMIUM_REQUIRED" | "ALLOW_PAYMENT_REQUIRED" => {
            MessengerError::PrivacyRestricted
        }
        "USER_IS_BLOCKED" | "YOU_BLOCKED_USER" => MessengerError::UserBlocked,
        "INPUT_USER_DEACTIVATED" => MessengerError::UserDeactivated,
        "PEER_ID_INVALID"
        | "CHAT_ID_INVALID"
        | "CHANNEL_INVALID"
        | "CHANNEL_PRIVATE"
        | "USER_ID_INVALID"
        | "CHAT_WRITE_FORBIDDEN"
        | "CHAT_RESTRICTED"
        | "USER_BANNED_IN_CHANNEL" => MessengerError::ChatNotFound(chat),
        "BOT_RESPONSE_TIMEOUT" => MessengerError::Timeout,
        "MESSAGE_TOO_LONG" => MessengerError::MessageTooLong,
        "MESSAGE_EMPTY" => MessengerError::MessageEmpty,
        "ENTITIES_TOO_LONG" => MessengerError::EntitiesTooLong,
        "RANDOM_ID_DUPLICATE" => MessengerError::RandomIdDuplicate,
        // On a press Telegram cannot tell "never existed" from "removed by
        // the bot": for data that fits a button (the adapter refuses longer
        // data itself) it means the keyboard is gone, which the workflow
        // reads as "our earlier press removed it".
        "DATA_INVALID" | "REPLY_MESSAGE_ID_INVALID" | "MESSAGE_ID_INVALID" => match op {
            Op::Press { message, .. } => MessengerError::ButtonNotFound(message),
            Op::Send { chat, reply_to: Some(r) } => MessengerError::MessageNotFound(chat, r),
            _ if name == "DATA_INVALID" => MessengerError::DataInvalid,
            _ => MessengerError::Other(format!("{name} ({})", e.code)),
        },
        // -503 "Timeout" and 500s are Telegram's own trouble: worth retrying.
        _ if e.code == -503 || e.code == 500 || name == "RPC_CALL_FAIL" || name == "TIMEOUT" => MessengerError::Timeout,
        _ if e.code == 401 => MessengerError::Other(format!(
            "{name}: the Telegram session is no longer authorised; run `tribute-assistant login`"
        )),
        _ => MessengerError::Other(format!("{name} ({})", e.code)),
    }
}

/// Maps any invocation error. Connection-level failures become `Disconnected`
/// (the caller retries); a request cancelled because the client is shutting
/// down is also `Disconnected` here, the adapter turns it into `Closed` when it
/// knows it was closed on purpose.
pub fn map_error(e: &InvocationError, op: Op) -> MessengerError {
    match e {
        InvocationError::Rpc(rpc) => map_rpc_error(rpc, op),
        InvocationError::Io(_)
        | InvocationError::Transport(_)
        | InvocationError::Dropped(_)
        | InvocationError::Authentication(_) => MessengerError::Disconnected,
        InvocationError::Deserialize(err) => MessengerError::Other(format!("unreadable answer from Telegram: {err}")),
        InvocationError::InvalidDc => MessengerError::Other("Telegram asked for an unknown data centre".into()),
        InvocationError::Session(err) => MessengerError::Other(format!("session storage failed: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(code: i32, message: &str) -> InvocationError {
        InvocationError::Rpc(RpcError::from(::grammers_tl_types::types::RpcError {
            error_code: code,
            error_message: message.into(),
        }))
    }

    const SEND: Op = Op::Send { chat: 5550001, reply_to: None };
    const PRESS: Op = Op::Press { chat: 93372553, message: 12 };

    #[test]
    fn flood_waits_carry_their_duration() {
        assert_eq!(map_error(&rpc(420, "FLOOD_WAIT_31"), SEND), MessengerError::FloodWait(Duration::from_secs(31)));
        assert_eq!(
            map_error(&rpc(420, "FLOOD_PREMIUM_WAIT_5"), SEND),
            MessengerError::FloodWait(Duration::from_secs(5))
        );
        assert_eq!(map_error(&rpc(400, "SLOWMODE_WAIT_9"), SEND), MessengerError::FloodWait(Duration::from_secs(9)));
        assert!(map_error(&rpc(420, "FLOOD_WAIT_31"), SEND).is_transient());
    }

    #[test]
    fn refusals_the_contact_flow_acts_on() {
        assert_eq!(map_error(&rpc(400, "PEER_FLOOD"), SEND), MessengerError::PeerFlood);
        assert_eq!(map_error(&rpc(403, "USER_PRIVACY_RESTRICTED"), SEND), MessengerError::PrivacyRestricted);
        assert_eq!(map_error(&rpc(403, "PRIVACY_PREMIUM_REQUIRED"), SEND), MessengerError::PrivacyRestricted);
        assert_eq!(map_error(&rpc(400, "USER_IS_BLOCKED"), SEND), MessengerError::UserBlocked);
        assert_eq!(map_error(&rpc(400, "INPUT_USER_DEACTIVATED"), SEND), MessengerError::UserDeactivated);
        assert_eq!(map_error(&rpc(400, "PEER_ID_INVALID"), SEND), MessengerError::ChatNotFound(5550001));
        for e in ["PEER_FLOOD", "USER_PRIVACY_RESTRICTED", "USER_IS_BLOCKED", "PEER_ID_INVALID"] {
            assert!(!map_error(&rpc(400, e), SEND).is_transient(), "{e} must not be retried blindly");
        }
    }

    #[test]
    fn refusals_of_the_message_itself_are_final() {
        assert_eq!(map_error(&rpc(400, "MESSAGE_TOO_LONG"), SEND), MessengerError::MessageTooLong);
        assert_eq!(map_error(&rpc(400, "MESSAGE_EMPTY"), SEND), MessengerError::MessageEmpty);
        assert_eq!(map_error(&rpc(400, "ENTITIES_TOO_LONG"), SEND), MessengerError::EntitiesTooLong);
        assert_eq!(map_error(&rpc(400, "RANDOM_ID_DUPLICATE"), SEND), MessengerError::RandomIdDuplicate);
        assert_eq!(map_error(&rpc(400, "DATA_INVALID"), Op::Other), MessengerError::DataInvalid);
        for e in ["MESSAGE_TOO_LONG", "MESSAGE_EMPTY", "ENTITIES_TOO_LONG", "RANDOM_ID_DUPLICATE"] {
            assert!(!map_error(&rpc(400, e), SEND).is_transient(), "{e} must not be retried");
        }
    }

    #[test]
    fn press_errors() {
        assert_eq!(map_error(&rpc(400, "DATA_INVALID"), PRESS), MessengerError::ButtonNotFound(12));
        assert_eq!(map_error(&rpc(400, "MESSAGE_ID_INVALID"), PRESS), MessengerError::ButtonNotFound(12));
        assert_eq!(map_error(&rpc(400, "BOT_RESPONSE_TIMEOUT"), PRESS), MessengerError::Timeout);
        let reply = Op::Send { chat: 1, reply_to: Some(9) };
        assert_eq!(map_error(&rpc(400, "REPLY_MESSAGE_ID_INVALID"), reply), MessengerError::MessageNotFound(1, 9));
    }

    #[test]
    fn connection_and_server_trouble_is_transient() {
        let io = InvocationError::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"));
        assert_eq!(map_error(&io, SEND), MessengerError::Disconnected);
        assert_eq!(map_error(&InvocationError::Dropped("runner gone"), Op::Other), MessengerError::Disconnected);
        assert_eq!(map_error(&rpc(-503, "Timeout"), SEND), MessengerError::Timeout);
        assert_eq!(map_error(&rpc(500, "INTERDC_2_CALL_ERROR"), SEND), MessengerError::Timeout);
        let unauth = map_error(&rpc(401, "AUTH_KEY_UNREGISTERED"), Op::Other);
        assert!(matches!(&unauth, MessengerError::Other(m) if m.contains("login")), "{unauth:?}");
        assert!(matches!(map_error(&rpc(400, "MEDIA_EMPTY"), SEND), MessengerError::Other(_)));
    }
}

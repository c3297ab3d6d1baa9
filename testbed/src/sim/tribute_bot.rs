//! The scripted Tribute bot: posts order notifications and drives the
//! reply → follow-up with "Send" → press → delivery exchange the daemon
//! must complete for every order.
//!
//! Behaviour, as the real bot shows it:
//! - a reply to an order notification gets a follow-up (a reply to our
//!   message) quoting our text, with a keyboard: `[Send]` then `[Edit]`;
//! - a second reply to an order still awaiting Send gets a fresh
//!   follow-up, and the old follow-up loses its keyboard;
//! - pressing Send delivers our text to the customer once, and the
//!   follow-up is edited to "✅ Delivered to …" without a keyboard (the
//!   daemon's proof of delivery when the answer to its press is lost:
//!   `[telegram] delivered_texts`);
//! - a reply to a delivered order gets [`ALREADY_COMPLETED_TEXT`];
//! - anything else we write to the bot gets [`NOT_UNDERSTOOD_TEXT`].
//!
//! Callback data is opaque and random per follow-up (drawn from the
//! world's seeded generator), so the daemon has to read it from the message
//! it received instead of constructing it. Data the bot never issued is
//! refused with `DATA_INVALID`; data of a keyboard the bot removed with
//! [`ButtonNotFound`](tribute_assistant::telegram::MessengerError::ButtonNotFound).

use super::bot_state::{FollowUp, OrderRecord};
use super::faults::Fault;
use super::order::{Delivery, SimOrder};
use super::state::{NewMessage, State};
use super::SimConfig;
use tribute_assistant::telegram::{CallbackAnswer, ChatId, InlineButton, MessageId, MessengerError, MessengerResult};

/// The bot's answer to a reply to anything but an order notification.
pub const NOT_UNDERSTOOD_TEXT: &str = "I don't understand this message.";
/// The bot's answer to a reply to an order that was already delivered.
pub const ALREADY_COMPLETED_TEXT: &str = "This order has already been completed.";
/// Label of the second follow-up button.
pub const EDIT_BUTTON_TEXT: &str = "Edit";
/// What the follow-up says after Edit was pressed.
pub const EDIT_PROMPT_TEXT: &str = "Reply to the order again with the corrected answer.";

/// Posts a Custom Product Order notification in the bot chat.
pub(super) fn post_order(st: &mut State, cfg: &SimConfig, order: &SimOrder) -> MessageId {
    if !st.users.contains_key(&order.customer_id) {
        // The customer is a real Telegram user we can write to.
        st.add_user(order.customer_id, &order.customer_name, None);
    }
    if let Some(user) = st.users.get_mut(&order.customer_id) {
        // Whether they blocked us or hide behind privacy is the fault plan's choice.
        user.customer = true;
    }
    let (text, entities) = order.render_notification();
    let id = st.append(cfg.tribute_bot_id, bot_message(cfg, text, entities, None, vec![]), true);
    st.bot
        .orders
        .insert(id, OrderRecord { order: order.clone(), delivered: false, live_followup: None, send_presses: 0 });
    id
}

/// The bot's reaction to a message our account sent in the bot chat.
pub(super) fn answer(st: &mut State, cfg: &SimConfig, our_message: MessageId) {
    let chat = cfg.tribute_bot_id;
    let Ok(ours) = st.message(chat, our_message) else { return };
    let (reply_to, our_text) = (ours.reply_to, ours.text.clone());
    let Some(order_id) = reply_to.filter(|r| st.bot.orders.contains_key(r)) else {
        st.append(chat, bot_message(cfg, NOT_UNDERSTOOD_TEXT.into(), vec![], Some(our_message), vec![]), true);
        return;
    };
    if st.faults.button_never.contains(&order_id) {
        return;
    }
    let record = &st.bot.orders[&order_id];
    if record.delivered {
        st.append(chat, bot_message(cfg, ALREADY_COMPLETED_TEXT.into(), vec![], Some(our_message), vec![]), true);
        return;
    }
    let customer = record.order.customer_name.clone();
    if let Some(old) = record.live_followup {
        st.edit(chat, old, None, vec![]);
    }
    // From the world's seeded generator, so a run replays exactly.
    let nonce = st.dice.u64();
    let send_data = format!("send:{order_id}:{nonce:016x}").into_bytes();
    let edit_data = format!("edit:{order_id}:{nonce:016x}").into_bytes();
    let text = format!(
        "Your answer to the order will be sent to {customer}:\n\n{our_text}\n\nPress «{}» to deliver it.",
        cfg.send_button_text
    );
    let keyboard = vec![
        vec![InlineButton { text: cfg.send_button_text.clone(), data: send_data.clone() }],
        vec![InlineButton { text: EDIT_BUTTON_TEXT.into(), data: edit_data.clone() }],
    ];
    let id = st.append(chat, bot_message(cfg, text, vec![], Some(our_message), keyboard), true);
    st.bot.followups.insert(id, FollowUp { order_message_id: order_id, answer: our_text, send_data, edit_data });
    if let Some(record) = st.bot.orders.get_mut(&order_id) {
        record.live_followup = Some(id);
    }
}

/// A press of an inline button on `message` in `chat`.
pub(super) fn press(
    st: &mut State,
    cfg: &SimConfig,
    chat: ChatId,
    message: MessageId,
    data: &[u8],
) -> MessengerResult<CallbackAnswer> {
    let on_message = st.message(chat, message)?.all_buttons().any(|b| b.data == data);
    let followup = if chat == cfg.tribute_bot_id { st.bot.followups.get(&message) } else { None };
    let Some(f) = followup.filter(|f| f.send_data == data || f.edit_data == data) else {
        return Err(MessengerError::DataInvalid);
    };
    if !on_message {
        return Err(MessengerError::ButtonNotFound(message));
    }
    let (order_id, is_send, answer) = (f.order_message_id, f.send_data == data, f.answer.clone());
    let button_gone = is_send && st.dice.roll(st.dice.rates().button_gone);
    let record = st.bot.orders.get_mut(&order_id).expect("a follow-up belongs to a known order");
    record.live_followup = None;
    if button_gone {
        // The keyboard goes, the text stays: nothing says it was delivered, because it was not.
        st.dice.inject(Fault::ButtonGone, format!("{chat}/{message}"));
        st.edit(chat, message, None, vec![]);
        return Err(MessengerError::ButtonNotFound(message));
    }
    if !is_send {
        st.edit(chat, message, Some(EDIT_PROMPT_TEXT.into()), vec![]);
        return Ok(CallbackAnswer { text: None, alert: false });
    }
    record.delivered = true;
    record.send_presses += 1;
    let customer_id = record.order.customer_id;
    let delivered_text = format!("✅ Delivered to {}.", record.order.customer_name);
    st.bot.deliveries.push(Delivery {
        order_message_id: order_id,
        customer_id,
        text: answer,
        delivered_at: std::time::Instant::now(),
    });
    st.edit(chat, message, Some(delivered_text), vec![]);
    Ok(CallbackAnswer { text: Some("Sent".into()), alert: false })
}

/// A message from the bot, as our account receives it.
pub(super) fn bot_message(
    cfg: &SimConfig,
    text: String,
    entities: Vec<tribute_assistant::telegram::Entity>,
    reply_to: Option<MessageId>,
    buttons: Vec<Vec<InlineButton>>,
) -> NewMessage {
    NewMessage { sender_id: Some(cfg.tribute_bot_id), outgoing: false, text, entities, reply_to, buttons }
}

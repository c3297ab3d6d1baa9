//! The daemon in a sandbox (SQLite file, reference backend on loopback,
//! Telegram simulator) in a directory the test chose: starting one, and
//! reading where its orders and the moderator chat stand. Most tests use
//! [`TestApp`](super::app::TestApp), which owns its directory.

use tribute_assistant::domain::{OrderRef, OrderState};
use tribute_assistant::store::OrderRecord;
use tribute_assistant::telegram::Message;
use tribute_testbed::sandbox::{Sandbox, SandboxOptions};

use super::sim::{ACCOUNT, PRODUCT};
use super::wait::{eventually, try_eventually, SETTLE};

/// A sandbox in `dir` with `opts`, its daemon running.
pub async fn sandbox_with(dir: &tempfile::TempDir, opts: SandboxOptions) -> Sandbox {
    let mut sb = stopped_sandbox(dir, opts).await;
    sb.start_daemon(None).await.expect("daemon starts");
    sb
}

/// A sandbox in `dir` with `opts` whose daemon is not started yet (for a
/// checkpoint hook, or faults that must be in place first). The backend
/// has one pending [`PRODUCT`] for [`ACCOUNT`], the account the default
/// `support::sim::order` names.
pub async fn stopped_sandbox(dir: &tempfile::TempDir, opts: SandboxOptions) -> Sandbox {
    let sb = Sandbox::new(dir.path(), opts).await.expect("sandbox starts");
    sb.backend.add_pending(ACCOUNT, PRODUCT);
    sb
}

/// The order stored for the Tribute message `msg`, if any yet.
pub async fn try_order(sb: &Sandbox, msg: i32) -> Option<OrderRecord> {
    let r = OrderRef::for_message(sb.tribute_chat(), msg);
    sb.store().order_by_ref(&r).await.unwrap()
}

pub async fn order_of(sb: &Sandbox, msg: i32) -> OrderRecord {
    try_order(sb, msg).await.expect("order stored")
}

/// Waits for the order of Tribute message `msg` to reach `state`; on
/// timeout the failure shows the order's history, which says why not.
pub async fn wait_state(sb: &Sandbox, msg: i32, state: OrderState) -> OrderRecord {
    if let Some(o) = try_eventually(|| async { try_order(sb, msg).await.filter(|o| o.state == state) }).await {
        return o;
    }
    let order = try_order(sb, msg).await;
    let history = match &order {
        Some(o) => sb.store().order_events(o.id).await.unwrap(),
        None => vec![],
    };
    let lines: Vec<String> = history.iter().map(|e| format!("  {} → {}: {}", e.at, e.to_state, e.note)).collect();
    panic!(
        "timed out after {SETTLE:?} waiting for order {msg} in {state}; it is {:?}:\n{}",
        order.map(|o| o.state),
        lines.join("\n")
    );
}

/// Every message in the moderator chat, oldest first.
pub fn moderator_texts(sb: &Sandbox) -> Vec<String> {
    sb.world.messages(sb.moderator_chat).into_iter().map(|m| m.text).collect()
}

/// The first moderator-chat message containing `needle`, once there is one.
pub async fn wait_chat(sb: &Sandbox, needle: &str) -> Message {
    eventually(&format!("{needle:?} in the moderator chat"), || async {
        sb.world.messages(sb.moderator_chat).into_iter().find(|m| m.text.contains(needle))
    })
    .await
}

/// Waits until every card the store holds is posted (or parked): from then
/// on the moderator chat shows all the cards decided so far, so counting
/// them there is final.
pub async fn wait_cards_posted(sb: &Sandbox) {
    eventually("every stored card posted", || async {
        sb.store().pending_cards().await.unwrap().is_empty().then_some(())
    })
    .await;
}

/// Waits until every customer and moderator message the daemon took in is
/// handled, and then every card that decided is posted: the moderator chat
/// is then final for everything received so far.
pub async fn wait_inbox_handled(sb: &Sandbox) {
    eventually("every received message handled", || async {
        sb.store().waiting_inbound(1).await.unwrap().is_empty().then_some(())
    })
    .await;
    wait_cards_posted(sb).await;
}

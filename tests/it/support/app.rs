//! The daemon as a test drives it: one [`TestApp`] — a sandbox in its own
//! temporary directory, assembled by the same composition root as `run` —
//! with verbs for what happens around the daemon (`post_order`,
//! `customer_says`, `moderator_replies`, `advance`) and waits for what it
//! does (`wait_state`, `wait_sent`, `wait_card`). Everything else on the
//! [`Sandbox`] is reachable through `Deref`.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use tribute_assistant::domain::OrderState;
use tribute_assistant::orders::CheckpointHook;
use tribute_assistant::store::OrderRecord;
use tribute_assistant::telegram::{Message, MessageId, UserId};
use tribute_testbed::sandbox::{Sandbox, SandboxOptions};
use tribute_testbed::sim::SimOrder;

use super::sandbox::{stopped_sandbox, wait_chat, wait_state};
use super::wait::eventually;

pub struct TestApp {
    sb: Sandbox,
    /// The sandbox's data dir, removed with the app.
    _dir: tempfile::TempDir,
}

impl Deref for TestApp {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sb
    }
}

impl DerefMut for TestApp {
    fn deref_mut(&mut self) -> &mut Sandbox {
        &mut self.sb
    }
}

impl TestApp {
    /// The default sandbox (customer contact on, no agent), daemon running.
    pub async fn spawn() -> Self {
        Self::spawn_with(SandboxOptions::default()).await
    }

    /// A sandbox with `opts`, daemon running.
    pub async fn spawn_with(opts: SandboxOptions) -> Self {
        let mut app = Self::stopped(opts).await;
        app.start().await;
        app
    }

    /// A sandbox with `opts` whose daemon is not started yet (faults or a
    /// checkpoint must be in place first); [`start`](Self::start) starts it.
    pub async fn stopped(opts: SandboxOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sb = stopped_sandbox(&dir, opts).await;
        Self { sb, _dir: dir }
    }

    pub async fn start(&mut self) {
        self.sb.start_daemon(None).await.expect("the daemon starts");
    }

    /// Starts the daemon with a checkpoint hook that can stop it mid-step, like a crash.
    pub async fn start_with(&mut self, checkpoint: CheckpointHook) {
        self.sb.start_daemon(Some(checkpoint)).await.expect("the daemon starts");
    }

    /// Stops the daemon gracefully, as SIGTERM would.
    pub async fn stop(&mut self) {
        self.sb.stop_daemon().await.expect("the daemon stops");
    }

    /// The Tribute bot posts a paid order; its message id.
    pub fn post_order(&self, order: &SimOrder) -> MessageId {
        self.sb.world.post_order(order)
    }

    /// `customer` writes `text` into their private chat with our account.
    pub fn customer_says(&self, customer: UserId, text: &str) -> MessageId {
        self.sb.world.post_as_user(customer, customer, text, None)
    }

    /// The sandbox's moderator answers `to` (a card) in the moderator chat.
    pub fn moderator_replies(&self, to: &Message, text: &str) -> MessageId {
        self.sb.world.post_as_user(self.sb.moderator_chat, self.sb.moderator, text, Some(to.id))
    }

    /// The sandbox's moderator writes `text` (a `/command`) to no message in particular.
    pub fn moderator_says(&self, text: &str) -> MessageId {
        self.sb.world.post_as_user(self.sb.moderator_chat, self.sb.moderator, text, None)
    }

    /// Moves a paused clock on (see `support::wait::pause_time`).
    pub async fn advance(&self, by: Duration) {
        super::wait::advance(by).await;
    }

    /// The order of Tribute message `msg` once it is in `state`.
    pub async fn wait_state(&self, msg: MessageId, state: OrderState) -> OrderRecord {
        wait_state(&self.sb, msg, state).await
    }

    /// What our account wrote to `customer`, once it is at least `n` messages.
    pub async fn wait_sent(&self, customer: UserId, n: usize) -> Vec<Message> {
        eventually(&format!("{n} message(s) to customer {customer}"), || async {
            let sent = self.sent_to(customer);
            (sent.len() >= n).then_some(sent)
        })
        .await
    }

    /// What our account wrote to `customer` so far, oldest first.
    pub fn sent_to(&self, customer: UserId) -> Vec<Message> {
        self.sb.world.messages(customer).into_iter().filter(|m| m.outgoing).collect()
    }

    /// The first moderator-chat message containing `needle`, once there is one.
    pub async fn wait_card(&self, needle: &str) -> Message {
        wait_chat(&self.sb, needle).await
    }

    pub async fn shutdown(self) {
        self.sb.shutdown().await.expect("the sandbox shuts down");
    }
}

//! The real Telegram adapter's commands and session handling, without
//! Telegram: `run` and `login --check` refuse to work without a session and
//! say what fixes it, and the session file is private (0600).
//!
//! End-to-end tests of `GrammersMessenger` over real MTProto need the
//! in-process test server (`tribute_testbed::mtproto`); see the note at the
//! end of this file.

use std::path::Path;
use std::process::{Command, Output};

use tribute_assistant::telegram::grammers::session::{open_existing_session, open_session, stored_self_id};
use tribute_assistant::telegram::grammers::FileSession;

fn bin(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tribute-assistant"));
    for k in [
        "RUST_LOG",
        "TRIBUTE_ASSISTANT_CONFIG",
        "TRIBUTE_ASSISTANT_API_ID",
        "TRIBUTE_ASSISTANT_API_HASH",
        "TRIBUTE_ASSISTANT_BACKEND_URL",
        "TRIBUTE_ASSISTANT_BACKEND_SECRET",
    ] {
        c.env_remove(k);
    }
    c.env("TRIBUTE_ASSISTANT_DATA_DIR", data_dir);
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_without_a_session_refuses_and_names_login() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(dir.path())
        .env("TRIBUTE_ASSISTANT_BACKEND_URL", "http://127.0.0.1:9")
        .env("TRIBUTE_ASSISTANT_BACKEND_SECRET", "s3cret")
        .env("TRIBUTE_ASSISTANT_API_ID", "12345")
        .env("TRIBUTE_ASSISTANT_API_HASH", "0123456789abcdef0123456789abcdef")
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("tribute-assistant login"), "{err}");
    assert!(!err.contains("0123456789abcdef"), "the api_hash leaked: {err}");
    // Refusing does not create a session file.
    assert!(!dir.path().join("telegram.session").exists());
}

#[test]
fn run_with_a_never_logged_in_session_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = open_session(&dir.path().join("telegram.session")).await.unwrap();
        s.close().await;
    });
    let out = bin(dir.path()).arg("run").output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("never logged in") && err.contains("tribute-assistant login"), "{err}");
}

#[test]
fn login_check_without_a_session_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(dir.path()).args(["login", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Not logged in") && err.contains("tribute-assistant login"), "{err}");
}

#[test]
fn login_without_api_credentials_says_where_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(dir.path()).arg("login").output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("my.telegram.org") && err.contains("TRIBUTE_ASSISTANT_API_HASH"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_session_file_is_private_and_remembers_the_account() {
    use grammers_session::types::{PeerAuth, PeerInfo};
    use grammers_session::Session;
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("telegram.session");
    let session: std::sync::Arc<FileSession> = open_session(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(stored_self_id(&*session).await, None);
    // What a successful sign-in records.
    session
        .cache_peer(PeerInfo::User {
            id: 4242,
            auth: Some(PeerAuth::from_hash(1)),
            bot: Some(false),
            is_self: Some(true),
        })
        .await
        .unwrap();
    session.close().await;
    let again = open_existing_session(&path).await.unwrap().unwrap();
    assert_eq!(stored_self_id(&*again).await, Some(4242));
    for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
        let p = entry.unwrap().path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is readable by others ({mode:o})", p.display());
    }
    again.close().await;
}

// ---------------------------------------------------------------------
// End to end over real MTProto: the daemon with `GrammersMessenger`
// against the in-process MTProto server serving the simulated world.

mod e2e {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use grammers_session::types::{ChannelKind, PeerInfo};
    use grammers_session::Session;
    use secrecy::SecretString;
    use tokio::sync::watch;
    use tokio::task::JoinHandle;
    use tribute_assistant::app::assemble::{assemble, Assembled, Blueprint};
    use tribute_assistant::backend::BackendConfig;
    use tribute_assistant::daemon::Exit;
    use tribute_assistant::domain::{OrderRef, OrderState};
    use tribute_assistant::ops::OpsRuntime;
    use tribute_assistant::orders::{IngestConfig, WorkflowConfig, DEFAULT_REPLY_TEMPLATE};
    use tribute_assistant::store::Store;
    use tribute_assistant::telegram::grammers::session::open_session;
    use tribute_assistant::telegram::grammers::utf16;
    use tribute_assistant::telegram::grammers::{FileSession, GrammersConfig, GrammersMessenger, RateLimit};
    use tribute_assistant::telegram::{
        ChatId, EntityKind, Event, Messenger, MessengerError, RandomId, TelegramSection,
    };
    use tribute_assistant::tribute::ParserConfig;
    use tribute_testbed::backend::ReferenceBackend;
    use tribute_testbed::mtproto::MtprotoServer;
    use tribute_testbed::sim::{SimConfig, SimWorld};

    use crate::support::sim::{order, OrderBuilder, ACCOUNT, PRODUCT};
    use crate::support::wait::{eventually, try_eventually, within, SETTLE};

    struct Harness {
        _dir: tempfile::TempDir,
        world: SimWorld,
        server: MtprotoServer,
        backend: ReferenceBackend,
        secret: SecretString,
        session_path: std::path::PathBuf,
        moderator_chat: ChatId,
        store: Store,
        flood_auto_sleep: Duration,
        running: Option<Running>,
    }

    struct Running {
        stop: watch::Sender<bool>,
        handle: JoinHandle<anyhow::Result<Exit>>,
        messenger: GrammersMessenger,
        session: Arc<FileSession>,
        ops: OpsRuntime,
    }

    impl Harness {
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let world = SimWorld::new(SimConfig::default());
            let moderator_chat = world.create_group("Moderators");
            let server = MtprotoServer::start(world.clone()).await.unwrap();
            let secret = SecretString::from("e2e-secret".to_owned());
            let backend = ReferenceBackend::start(secret.clone()).await.unwrap();
            backend.add_pending(ACCOUNT, PRODUCT);
            let session_path = dir.path().join("telegram.session");
            // What `login` leaves behind: the key, the DC, our account; plus the
            // chats we talk in (the Tribute bot, the moderator group) with hashes.
            let session = open_session(&session_path).await.unwrap();
            server.seed_session(&*session).await.unwrap();
            let bot = server.peer_ref(world.tribute_chat());
            session
                .cache_peer(PeerInfo::User {
                    id: world.tribute_chat(),
                    auth: Some(bot.auth),
                    bot: Some(true),
                    is_self: Some(false),
                })
                .await
                .unwrap();
            let group = server.peer_ref(moderator_chat);
            if let Some(channel) = group.id.bare_id().filter(|_| moderator_chat < -1_000_000_000_000) {
                session
                    .cache_peer(PeerInfo::Channel {
                        id: channel,
                        auth: Some(group.auth),
                        kind: Some(ChannelKind::Megagroup),
                    })
                    .await
                    .unwrap();
            }
            session.close().await;
            let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
            Self {
                _dir: dir,
                world,
                server,
                backend,
                secret,
                session_path,
                moderator_chat,
                store,
                flood_auto_sleep: Duration::from_secs(5),
                running: None,
            }
        }

        fn tribute_chat(&self) -> ChatId {
            self.world.tribute_chat()
        }

        async fn connect(&self) -> (GrammersMessenger, Arc<FileSession>) {
            let session = open_session(&self.session_path).await.unwrap();
            let cfg = GrammersConfig {
                group_chats: vec![self.moderator_chat],
                rate_limit: RateLimit { per_minute: 600.0, burst: 5 },
                flood_auto_sleep: self.flood_auto_sleep,
                request_timeout: Duration::from_secs(5),
                ..GrammersConfig::new(12345, self.tribute_chat())
            };
            let m = within("connect", GrammersMessenger::connect(session.clone(), cfg)).await.expect("connects");
            (m, session)
        }

        async fn start_daemon(&mut self) {
            let (messenger, session) = self.connect().await;
            let backend = BackendConfig {
                url: self.backend.url(),
                secret: self.secret.clone(),
                timeout: Duration::from_secs(5),
                max_attempts: 4,
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(400),
            };
            let workflow = WorkflowConfig {
                tribute_chat: self.tribute_chat(),
                moderator_chat: Some(self.moderator_chat),
                send_button_texts: vec!["Send".into()],
                delivered_texts: TelegramSection::default().delivered_texts,
                button_timeout: Duration::from_secs(10),
                max_flood_sleep: Duration::from_secs(5),
                park_delay: Duration::from_millis(300),
                reply_template: DEFAULT_REPLY_TEMPLATE.to_owned(),
                first_start_lookback: Duration::from_secs(3600),
                resync_interval: Duration::from_secs(2),
                resync_window: Duration::from_secs(900),
                max_step_backoff: Duration::from_secs(60),
                outage_after: Duration::from_secs(900),
            };
            let ingest = IngestConfig { parser: ParserConfig::default(), tribute_bot: self.tribute_chat() };
            let blueprint =
                Blueprint::orders_only(self.store.clone(), Arc::new(messenger.clone()), backend, workflow, ingest);
            let Assembled { daemon, shutdown: stop, ops } = assemble(blueprint).await.unwrap();
            let handle = tokio::spawn(daemon.run());
            self.running = Some(Running { stop, handle, messenger, session, ops });
        }

        async fn stop_daemon(&mut self) {
            let r = self.running.take().expect("running");
            let _ = r.stop.send(true);
            let exit = tokio::time::timeout(SETTLE, r.handle).await.expect("stops in time").unwrap().unwrap();
            assert_eq!(exit, Exit::Shutdown);
            r.ops.shutdown().await;
            r.messenger.close().await;
            r.session.close().await;
        }

        async fn state_of(&self, msg: i32) -> Option<OrderState> {
            let r = OrderRef::for_message(self.tribute_chat(), msg);
            self.store.order_by_ref(&r).await.unwrap().map(|o| o.state)
        }

        async fn wait_state(&self, msg: i32, want: OrderState) {
            if try_eventually(|| async { (self.state_of(msg).await == Some(want)).then_some(()) }).await.is_some() {
                return;
            }
            let now = self.state_of(msg).await;
            let r = OrderRef::for_message(self.tribute_chat(), msg);
            let events = match self.store.order_by_ref(&r).await.unwrap() {
                Some(o) => self.store.order_events(o.id).await.unwrap(),
                None => vec![],
            };
            let history: Vec<_> = events.iter().map(|e| format!("{} {}", e.to_state, e.note)).collect();
            panic!("order {msg} is {now:?}, not {want:?}; history: {history:#?}; calls: {:?}", self.server.calls());
        }

        fn calls_of(&self, method: &str) -> Vec<Option<String>> {
            self.server.calls().into_iter().filter(|c| c.method == method).map(|c| c.error).collect()
        }

        async fn shutdown(mut self) {
            if self.running.is_some() {
                self.stop_daemon().await;
            }
            self.store.close().await;
            self.backend.shutdown().await;
            self.server.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_order_pushed_as_an_update_is_activated_replied_to_and_confirmed() {
        let mut h = Harness::new().await;
        h.start_daemon().await;
        let msg = h.world.post_order(&order(5550001));
        h.wait_state(msg, OrderState::Confirmed).await;

        assert_eq!(h.backend.stats().activations, 1);
        assert_eq!(h.world.send_presses(msg), 1);
        let reply =
            h.world.messages(h.tribute_chat()).into_iter().find(|m| m.outgoing).expect("our reply reached the bot");
        assert_eq!(reply.reply_to, Some(msg), "the reply is a reply to the order message");
        let order_ref = OrderRef::for_message(h.tribute_chat(), msg);
        assert!(reply.text.contains(order_ref.as_str()), "{}", reply.text);
        assert_eq!(h.calls_of("messages.sendMessage"), vec![None]);
        assert_eq!(h.calls_of("messages.getBotCallbackAnswer"), vec![None]);
        h.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mentions_after_emoji_and_cyrillic_map_to_the_right_user_and_make_the_customer_reachable() {
        let h = Harness::new().await;
        h.world.fail_sends_to(5550002, MessengerError::PrivacyRestricted);
        let (m, session) = h.connect().await;
        // A fresh session learns the update state with updates.getState (after the
        // session check's own); an update pushed before that answer is (rightly)
        // treated as already seen, so post only once the stream is set up.
        eventually("the update stream to ask for the state", || async {
            (h.calls_of("updates.getState").len() >= 2).then_some(())
        })
        .await;
        let name = "Ива́н 🚀 Петров";
        let msg = h.world.post_order(&order(5550001).by(name));
        let ev = within("an event", m.next_event()).await.unwrap();
        let Event::NewMessage(got) = ev else { panic!("{ev:?}") };
        assert_eq!((got.chat_id, got.id), (h.tribute_chat(), msg));
        let mention =
            got.entities.iter().find(|e| matches!(e.kind, EntityKind::MentionName { .. })).expect("a mention entity");
        assert_eq!(mention.kind, EntityKind::MentionName { user_id: 5550001 });
        assert_eq!(utf16::slice(&got.text, mention.offset, mention.length), Some(name));

        // The customer is only known from that mention: reachable through the message.
        let random_id = RandomId::fresh();
        let sent = m
            .send_message(5550001, "Здравствуйте! Какой у вас ID?", None, random_id)
            .await
            .expect("reaches the customer");
        let theirs = h.world.messages(5550001);
        assert!(theirs.iter().any(|x| x.id == sent && x.text.starts_with("Здравствуйте")), "{theirs:?}");
        // Our random_id reached Telegram: the same send again is refused, not repeated.
        assert_eq!(h.world.message_for_random_id(random_id), Some((5550001, sent)));
        assert_eq!(
            m.send_message(5550001, "Здравствуйте! Какой у вас ID?", None, random_id).await,
            Err(MessengerError::RandomIdDuplicate)
        );
        assert_eq!(
            m.send_message(5550001, &"я".repeat(4097), None, RandomId::fresh()).await,
            Err(MessengerError::MessageTooLong)
        );
        assert_eq!(h.world.messages(5550001).len(), 1);

        // A customer whose privacy settings forbid it: a typed error.
        let second = h.world.post_order(&order(5550002).by("Ann"));
        loop {
            let ev = within("an event", m.next_event()).await.unwrap();
            if matches!(&ev, Event::NewMessage(x) if x.id == second) {
                break;
            }
        }
        assert_eq!(
            m.send_message(5550002, "hello", None, RandomId::fresh()).await,
            Err(MessengerError::PrivacyRestricted)
        );
        // Unknown users stay unknown.
        assert!(matches!(
            m.send_message(777_000_111, "x", None, RandomId::fresh()).await,
            Err(MessengerError::ChatNotFound(_))
        ));
        m.close().await;
        session.close().await;
        h.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn orders_that_arrive_while_stopped_are_processed_once_after_the_restart() {
        let mut h = Harness::new().await;
        h.start_daemon().await;
        let first = h.world.post_order(&order(5550001).by("Иван"));
        h.wait_state(first, OrderState::Confirmed).await;
        h.stop_daemon().await;

        h.backend.add_pending("223344", "100 Diamonds");
        h.backend.add_pending("334455", "100 Diamonds");
        let a = h.world.post_order(&order(5550003).by("Анна").details("ID 223344"));
        let b = h.world.post_order(&order(5550004).by("Борис").details("ID 334455"));
        h.start_daemon().await;
        h.wait_state(a, OrderState::Confirmed).await;
        h.wait_state(b, OrderState::Confirmed).await;
        assert_eq!(h.backend.stats().activations, 3);
        // The saved update state made the new connection catch up (getDifference),
        // next to the core's own history re-read.
        assert!(!h.calls_of("updates.getDifference").is_empty(), "{:?}", h.server.calls());
        for msg in [first, a, b] {
            assert_eq!(h.world.send_presses(msg), 1, "message {msg}");
        }
        assert_eq!(h.world.deliveries().len(), 3);
        h.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_wait_on_send_is_waited_out_and_the_order_completes_once() {
        let mut h = Harness::new().await;
        // Not slept inside the client: surfaces as FloodWait and the workflow waits.
        h.flood_auto_sleep = Duration::ZERO;
        h.start_daemon().await;
        h.world.flood_wait_next_sends(1, Duration::from_secs(2));
        let started = Instant::now();
        let msg = h.world.post_order(&order(5550001).by("Иван"));
        h.wait_state(msg, OrderState::Confirmed).await;
        assert!(started.elapsed() >= Duration::from_secs(2), "the flood wait was honoured");
        let sends = h.calls_of("messages.sendMessage");
        assert_eq!(sends.len(), 2, "{sends:?}");
        assert!(sends[0].as_deref().is_some_and(|e| e.contains("FLOOD_WAIT")), "{sends:?}");
        assert_eq!(h.world.deliveries().len(), 1);
        assert_eq!(h.backend.stats().activations, 1);
        h.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_connection_mid_order_recovers() {
        let mut h = Harness::new().await;
        h.world.button_delay(Duration::from_millis(500));
        h.start_daemon().await;
        let msg = h.world.post_order(&order(5550001).by("Иван"));
        // Wait until our reply went out, then cut the TCP link before the button comes.
        eventually("our reply to be sent", || async { (!h.calls_of("messages.sendMessage").is_empty()).then_some(()) })
            .await;
        h.server.drop_connections();
        h.wait_state(msg, OrderState::Confirmed).await;
        assert!(h.server.connections_accepted() >= 2, "the client reconnected");
        assert_eq!(h.world.send_presses(msg), 1);
        assert_eq!(h.backend.stats().activations, 1);
        h.shutdown().await;
    }
}

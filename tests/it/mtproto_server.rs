//! The in-process MTProto server against the real grammers client: real
//! TCP on loopback, real MTProto 2.0 encryption, the simulated world
//! behind it. Every wait has a timeout so a hang fails instead of blocking.

use std::sync::Arc;
use std::time::{Duration, Instant};

use grammers_client::client::UpdateStream;
use grammers_client::message::InputMessage;
use grammers_client::session::storages::MemorySession;
use grammers_client::session::types::PeerRef;
use grammers_client::session::updates::UpdatesLike;
use grammers_client::update::{Message as TgMessage, Update};
use grammers_client::{tl, Client, InvocationError, SenderPool};
use grammers_mtsender::{ConnectionParams, NoRetries, SenderPoolFatHandle, UpdatesConfiguration};
use tokio::task::JoinHandle;
use tribute_assistant::telegram::{EntityKind, MessengerError};
use tribute_testbed::mtproto::MtprotoServer;
use tribute_testbed::sim::{SimConfig, SimWorld};

use crate::support::sim::{order, OrderBuilder};
use crate::support::wait::{eventually, within, EVENT, STREAM_PRIMING};

const API_ID: i32 = 12345;

/// A grammers client connected to the server, with its pool running.
struct Tg {
    client: Client,
    handle: SenderPoolFatHandle,
    session: Arc<MemorySession>,
    updates: Option<tokio::sync::mpsc::Receiver<UpdatesLike>>,
    pool: JoinHandle<()>,
}

fn params() -> ConnectionParams {
    ConnectionParams {
        device_model: "test".into(),
        system_version: "1".into(),
        app_version: "1".into(),
        system_lang_code: "en".into(),
        lang_code: "en".into(),
        ..Default::default()
    }
}

impl Tg {
    fn connect(server: &MtprotoServer) -> Self {
        Self::with(Arc::new(server.memory_session()), params())
    }

    fn with(session: Arc<MemorySession>, params: ConnectionParams) -> Self {
        let SenderPool { runner, handle, updates } = SenderPool::with_configuration(session.clone(), API_ID, params);
        let client = Client::new(handle.clone());
        let pool = tokio::spawn(runner.run());
        Tg { client, handle, session, updates: Some(updates), pool }
    }

    /// The update stream, already past its initial `updates.getState` (or
    /// catch-up), so later updates are not mistaken for old ones.
    async fn stream(&mut self, catch_up: bool) -> UpdateStream {
        let updates = self.updates.take().expect("one update stream per client");
        let mut stream =
            within("stream_updates", self.client.stream_updates(updates, UpdatesConfiguration { catch_up }))
                .await
                .expect("an update stream");
        if !catch_up {
            // The first `next` fetches the state; nothing is expected yet.
            if let Ok(u) = tokio::time::timeout(STREAM_PRIMING, stream.next()).await {
                panic!("unexpected update while priming: {:?}", u.map(|u| format!("{u:?}").len()));
            }
        }
        stream
    }

    async fn stop(self) {
        self.handle.quit();
        let _ = tokio::time::timeout(EVENT, self.pool).await;
    }
}

async fn next_update(stream: &mut UpdateStream) -> Update {
    within("an update", stream.next()).await.expect("an update, not an error")
}

/// The next incoming message. (grammers also reports our own sent
/// messages as `NewMessage`, built from the send's answer.)
async fn next_message(stream: &mut UpdateStream) -> TgMessage {
    loop {
        if let Update::NewMessage(m) = next_update(stream).await {
            if !m.outgoing() {
                return m;
            }
        }
    }
}

async fn next_edit(stream: &mut UpdateStream) -> TgMessage {
    loop {
        if let Update::MessageEdited(m) = next_update(stream).await {
            return m;
        }
    }
}

fn rpc_error(e: &InvocationError) -> (i32, String, Option<u32>) {
    match e {
        InvocationError::Rpc(rpc) => (rpc.code, rpc.name.clone(), rpc.value),
        other => panic!("expected an RPC error, got {other}"),
    }
}

fn input_peer(p: PeerRef) -> tl::enums::InputPeer {
    p.into()
}

/// (text, callback data) of every inline button on a message.
fn buttons(m: &TgMessage) -> Vec<(String, Vec<u8>)> {
    let Some(tl::enums::ReplyMarkup::ReplyInlineMarkup(markup)) = m.reply_markup() else { return vec![] };
    markup
        .rows
        .iter()
        .flat_map(|tl::enums::KeyboardInlineButtonRow::Row(row)| row.buttons.iter())
        .filter_map(|tl::enums::KeyboardInlineButton::Button(b)| match &b.r#type {
            tl::enums::InlineButtonType::Callback(c) => Some((b.text.clone(), c.data.clone())),
            _ => None,
        })
        .collect()
}

async fn press(
    tg: &Tg,
    peer: PeerRef,
    msg_id: i32,
    data: Vec<u8>,
) -> Result<tl::types::messages::BotCallbackAnswer, InvocationError> {
    let tl::enums::messages::BotCallbackAnswer::Answer(a) = tg
        .client
        .invoke(&tl::functions::messages::GetBotCallbackAnswer {
            game: false,
            peer: input_peer(peer),
            msg_id,
            data: Some(data),
            password: None,
        })
        .await?;
    Ok(a)
}

#[tokio::test]
async fn connects_with_the_preseeded_key_and_answers_get_config_and_get_me() {
    let world = SimWorld::new(SimConfig::default());
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let tg = Tg::connect(&server);

    assert!(within("is_authorized", tg.client.is_authorized()).await.unwrap());
    let me = within("get_me", tg.client.get_me()).await.unwrap();
    assert_eq!(me.id().bare_id(), Some(1000));

    let tl::enums::Config::Config(config) =
        within("getConfig", tg.client.invoke(&tl::functions::help::GetConfig {})).await.unwrap();
    assert_eq!(config.this_dc, server.dc_id());
    let tl::enums::DcOption::Option(dc) = &config.dc_options[0];
    assert_eq!((dc.ip_address.as_str(), dc.port), ("127.0.0.1", i32::from(server.addr().port())));
    // The client stored the (unchanged) loopback address with the key.
    let dc_option = grammers_client::session::Session::dc_option(&*tg.session, server.dc_id()).unwrap().unwrap();
    assert_eq!(dc_option.ipv4, server.addr_v4());
    assert_eq!(dc_option.auth_key, Some(server.auth_key()));

    let methods: Vec<String> = server.calls().into_iter().map(|c| c.method).collect();
    assert!(methods.contains(&"help.getConfig".to_string()), "{methods:?}");
    assert!(methods.contains(&"users.getUsers".to_string()), "{methods:?}");
    assert!(methods.contains(&"updates.getState".to_string()), "{methods:?}");
    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_with_another_key_is_refused() {
    let world = SimWorld::new(SimConfig::default());
    let server = MtprotoServer::start(world).await.unwrap();
    let mut data = server.session_data();
    data.dc_options.get_mut(&server.dc_id()).unwrap().auth_key = Some([7u8; 256]);
    let tg = Tg::with(
        Arc::new(MemorySession::from(data)),
        ConnectionParams { retry_policy: Box::new(NoRetries), ..params() },
    );
    // -404 makes grammers try a fresh DH key exchange, which this server does not offer.
    assert!(within("get_me", tg.client.get_me()).await.is_err());
    tg.stop().await;
}

#[tokio::test]
async fn reply_reaches_the_bot_and_its_follow_up_is_pushed_then_the_press_delivers() {
    let world = SimWorld::new(SimConfig::default());
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let mut tg = Tg::connect(&server);
    let mut stream = tg.stream(false).await;

    // An order arrives as a pushed update, with the customer mention after an emoji.
    let order_id = world.post_order(&order(4242).by("Мария 🌸 Иванова"));
    let pushed = next_message(&mut stream).await;
    assert_eq!(pushed.id(), order_id);
    assert_eq!(pushed.peer_id().bot_api_dialog_id(), Some(world.tribute_chat()));
    assert!(!pushed.outgoing());
    let sim = &world.messages(world.tribute_chat())[order_id as usize - 1];
    assert_eq!(pushed.text(), sim.text);
    let mention = sim.entities.iter().find(|e| matches!(e.kind, EntityKind::MentionName { .. })).unwrap();
    let tl_mention = pushed
        .fmt_entities()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            tl::enums::MessageEntity::MentionName(m) => Some(m.clone()),
            _ => None,
        })
        .expect("a mention entity");
    assert_eq!(
        (tl_mention.offset as usize, tl_mention.length as usize, tl_mention.user_id),
        (mention.offset, mention.length, 4242)
    );
    let sender = pushed.sender_id().unwrap();
    assert_eq!(sender.bot_api_dialog_id(), Some(world.tribute_chat()));

    // Our reply, with reply_to, reaches the bot.
    let bot = server.peer_ref(world.tribute_chat());
    let sent = within(
        "send_message",
        tg.client.send_message(bot, InputMessage::new().text("Premium month, payment #7").reply_to(Some(order_id))),
    )
    .await
    .unwrap();
    let ours = &world.messages(world.tribute_chat())[sent.id() as usize - 1];
    assert!(ours.outgoing);
    assert_eq!(ours.reply_to, Some(order_id));
    assert_eq!(ours.text, "Premium month, payment #7");

    // The bot's follow-up with the keyboard is pushed.
    let follow_up = next_message(&mut stream).await;
    assert_eq!(follow_up.reply_to_message_id(), Some(sent.id()));
    let keys = buttons(&follow_up);
    assert_eq!(keys.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["Send", "Edit"]);

    // Pressing Send delivers once, and the keyboard goes away (an edit update).
    let answer = within("press", press(&tg, bot, follow_up.id(), keys[0].1.clone())).await.unwrap();
    assert_eq!(answer.message.as_deref(), Some("Sent"));
    assert!(!answer.alert);
    let deliveries = world.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].order_message_id, order_id);
    assert_eq!(deliveries[0].customer_id, 4242);
    let edited = next_edit(&mut stream).await;
    assert_eq!(edited.id(), follow_up.id());
    assert!(buttons(&edited).is_empty());
    assert!(edited.text().starts_with("✅ Delivered"));

    // Pressing again: the keyboard is gone.
    let again = within("press again", press(&tg, bot, follow_up.id(), keys[0].1.clone())).await.unwrap_err();
    assert_eq!(rpc_error(&again).1, "DATA_INVALID");
    assert_eq!(world.send_presses(order_id), 1);

    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn history_and_get_messages_serve_the_sim_chat() {
    let world = SimWorld::new(SimConfig::default());
    let first = world.post_order(&order(51).by("Анна"));
    let second = world.post_order(&order(52).by("Boris"));
    world.post_bot_text("A donation of €3.00 from Carl", vec![]);
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let tg = Tg::connect(&server);
    let bot = server.peer_ref(world.tribute_chat());

    let mut iter = tg.client.iter_messages(bot);
    let mut got = Vec::new();
    while let Some(m) = within("iter_messages", iter.next()).await.unwrap() {
        got.push((m.id(), m.text().to_owned()));
    }
    let sim = world.messages(world.tribute_chat());
    assert_eq!(got, sim.iter().rev().map(|m| (m.id, m.text.clone())).collect::<Vec<_>>());

    // "Since" a message id, as the daemon re-reads on start.
    let tl::enums::messages::Messages::Messages(since) = tg
        .client
        .invoke(&tl::functions::messages::GetHistory {
            peer: input_peer(bot),
            offset_id: 0,
            offset_date: 0,
            add_offset: 0,
            limit: 100,
            max_id: 0,
            min_id: first,
            hash: 0,
        })
        .await
        .unwrap()
    else {
        panic!("a complete history")
    };
    let ids: Vec<i32> = since.messages.iter().map(|m| m.id()).collect();
    assert_eq!(ids, [second + 1, second]);
    // The senders come with the messages, with their access hashes.
    assert!(since.users.iter().any(|u| matches!(u, tl::enums::User::User(u) if u.id == world.tribute_chat() && u.bot)));

    let by_id = tg.client.get_messages_by_id(bot, &[first, 99]).await.unwrap();
    assert_eq!(by_id[0].as_ref().map(|m| m.text().to_owned()), Some(sim[0].text.clone()));
    assert!(by_id[1].is_none());

    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn flood_wait_reaches_the_client_as_420_or_is_slept_through() {
    let world = SimWorld::new(SimConfig::default());
    let order_id = world.post_order(&order(61).by("Dana"));
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let bot = server.peer_ref(world.tribute_chat());

    // Without retries the error surfaces as FLOOD_WAIT_3 (code 420, value 3).
    let strict =
        Tg::with(Arc::new(server.memory_session()), ConnectionParams { retry_policy: Box::new(NoRetries), ..params() });
    world.flood_wait_next_sends(1, Duration::from_secs(3));
    let err =
        within("flooded send", strict.client.send_message(bot, InputMessage::new().text("x").reply_to(Some(order_id))))
            .await
            .unwrap_err();
    assert_eq!(rpc_error(&err), (420, "FLOOD_WAIT".to_string(), Some(3)));
    assert_eq!(world.messages(world.tribute_chat()).len(), 1, "nothing was sent");
    strict.stop().await;

    // grammers' default policy sleeps through short flood waits and retries once.
    let tg = Tg::connect(&server);
    world.flood_wait_next_sends(1, Duration::from_secs(1));
    let started = Instant::now();
    let sent =
        within("slept send", tg.client.send_message(bot, InputMessage::new().text("Premium").reply_to(Some(order_id))))
            .await
            .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(world.messages(world.tribute_chat())[sent.id() as usize - 1].reply_to, Some(order_id));
    let errors: Vec<_> = server.calls().into_iter().filter_map(|c| c.error).collect();
    assert_eq!(errors, ["FLOOD_WAIT_3", "FLOOD_WAIT_1"]);
    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_are_telegram_errors_and_mentioned_users_resolve_from_the_message() {
    let world = SimWorld::new(SimConfig::default());
    let order_id = world.post_order(&order(71).by("Eve"));
    world.fail_sends_to(71, MessengerError::PrivacyRestricted);
    world.post_order(&order(72).by("Frank"));
    world.fail_sends_to(72, MessengerError::PeerFlood);
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let tg = Tg::connect(&server);
    let bot = server.peer_ref(world.tribute_chat());

    // The customer is only a mention: resolve them through the order message.
    let users = tg
        .client
        .invoke(&tl::functions::users::GetUsers {
            id: vec![tl::types::InputUserFromMessage { peer: input_peer(bot), msg_id: order_id, user_id: 71 }.into()],
        })
        .await
        .unwrap();
    let [tl::enums::User::User(eve)] = &users[..] else { panic!("one user, got {users:?}") };
    assert_eq!((eve.id, eve.first_name.as_deref()), (71, Some("Eve")));
    assert_eq!(eve.access_hash, Some(server.user_access_hash(71)));
    // A user the message does not show is not handed out.
    let none = tg
        .client
        .invoke(&tl::functions::users::GetUsers {
            id: vec![tl::types::InputUserFromMessage { peer: input_peer(bot), msg_id: order_id, user_id: 72 }.into()],
        })
        .await
        .unwrap();
    assert!(none.is_empty());

    let send = |peer: tl::enums::InputPeer| tl::functions::messages::SendMessage {
        no_webpage: true,
        silent: false,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer,
        reply_to: None,
        message: "Hello! Which account ID should we activate?".into(),
        random_id: 1,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
        rich_message: None,
    };
    let via_message = tl::types::InputPeerUserFromMessage { peer: input_peer(bot), msg_id: order_id, user_id: 71 };
    let err = tg.client.invoke(&send(via_message.clone().into())).await.unwrap_err();
    assert_eq!(rpc_error(&err), (400, "USER_PRIVACY_RESTRICTED".to_string(), None));
    let err = tg.client.send_message(server.peer_ref(72), "Hello").await.unwrap_err();
    assert_eq!(rpc_error(&err), (400, "PEER_FLOOD".to_string(), None));
    // A wrong access hash is refused like Telegram does.
    let wrong = tl::types::InputPeerUser { user_id: 71, access_hash: 12345 };
    let err = tg.client.invoke(&send(wrong.into())).await.unwrap_err();
    assert_eq!(rpc_error(&err).1, "PEER_ID_INVALID");

    world.clear_send_failure(71);
    tg.client.invoke(&send(via_message.into())).await.unwrap();
    assert_eq!(world.messages(71).len(), 1);
    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_is_reopened_and_updates_keep_coming() {
    let world = SimWorld::new(SimConfig::default());
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let mut tg = Tg::connect(&server);
    let mut stream = tg.stream(false).await;
    let first = world.post_order(&order(81).by("Gus"));
    assert_eq!(next_message(&mut stream).await.id(), first);
    let accepted = server.connections_accepted();

    server.drop_connections();
    // Posted while the socket is down: the client catches up (getDifference).
    let second = world.post_order(&order(82).by("Hana"));
    assert_eq!(next_message(&mut stream).await.id(), second);
    assert!(server.connections_accepted() > accepted, "the client reconnected");

    // Requests work on the new connection, and live pushes resume.
    let bot = server.peer_ref(world.tribute_chat());
    within(
        "send after reconnect",
        tg.client.send_message(bot, InputMessage::new().text("Premium").reply_to(Some(second))),
    )
    .await
    .unwrap();
    let follow_up = next_message(&mut stream).await;
    assert_eq!(buttons(&follow_up).len(), 2);
    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn get_difference_returns_what_was_posted_while_the_client_was_away() {
    let world = SimWorld::new(SimConfig::default());
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let moderators = world.create_group("Moderators");
    world.add_user(555, "Moderator Max", Some("max"));

    let mut tg = Tg::connect(&server);
    let stream = tg.stream(false).await;
    within("sync", stream.sync_update_state()).await.unwrap();
    let session = tg.session.clone();
    drop(stream);
    tg.stop().await;

    // While nobody is connected: two orders and a moderator message.
    let a = world.post_order(&order(91).by("Ivan"));
    let b = world.post_order(&order(92).by("Jana"));
    world.post_as_user(moderators, 555, "reply 42: ID is 777", None);

    let mut tg = Tg::with(session, params());
    let mut stream = tg.stream(true).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = next_message(&mut stream).await;
        got.push((m.peer_id().bot_api_dialog_id().unwrap(), m.id(), m.text().to_owned()));
    }
    got.sort();
    assert_eq!(got[0].0, moderators);
    assert_eq!(got[0].2, "reply 42: ID is 777");
    assert_eq!(
        got[1..].iter().map(|g| (g.0, g.1)).collect::<Vec<_>>(),
        [(world.tribute_chat(), a), (world.tribute_chat(), b)]
    );
    assert!(server.calls().iter().any(|c| c.method == "updates.getDifference"));

    // Nothing is delivered twice: the next update is a message posted after
    // all this, so anything delivered again would have come before it.
    let marker = world.post_as_user(moderators, 555, "marker", None);
    match next_update(&mut stream).await {
        Update::NewMessage(m) if m.id() == marker && m.text() == "marker" => {}
        Update::NewMessage(m) => panic!("message {} delivered again before the marker", m.id()),
        _ => panic!("an extra update before the marker"),
    }
    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn groups_are_megagroups_with_the_sim_chat_id() {
    let world = SimWorld::new(SimConfig::default());
    let moderators = world.create_group("Moderators");
    world.add_user(556, "Moderator Mia", None);
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let mut tg = Tg::connect(&server);
    let mut stream = tg.stream(false).await;

    let card =
        within("send to group", tg.client.send_message(server.peer_ref(moderators), "Case #1: customer 91 needs help"))
            .await
            .unwrap();
    assert_eq!(card.peer_id().bot_api_dialog_id(), Some(moderators));
    world.post_as_user(moderators, 556, "On it", Some(card.id()));
    let reply = next_message(&mut stream).await;
    assert_eq!(reply.peer_id().bot_api_dialog_id(), Some(moderators));
    assert_eq!(reply.reply_to_message_id(), Some(card.id()));
    assert_eq!(reply.sender_id().and_then(|s| s.bot_api_dialog_id()), Some(556));

    let mut iter = tg.client.iter_messages(server.peer_ref(moderators));
    let mut texts = Vec::new();
    while let Some(m) = within("group history", iter.next()).await.unwrap() {
        texts.push(m.text().to_owned());
    }
    assert_eq!(texts, ["On it", "Case #1: customer 91 needs help"]);
    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn long_requests_arrive_gzip_packed_and_are_unpacked() {
    let world = SimWorld::new(SimConfig::default());
    world.add_user(601, "Kim", None);
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let tg = Tg::connect(&server);
    let text: String = (0..300).map(|i| format!("{i} Заказ 🆕 ")).collect();
    within("long send", tg.client.send_message(server.peer_ref(601), text.as_str())).await.unwrap();
    assert_eq!(world.messages(601)[0].text, text.trim(), "whole, as Telegram stores it (trimmed)");
    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn dialogs_list_every_chat_with_usable_access_hashes() {
    let world = SimWorld::new(SimConfig::default());
    let moderators = world.create_group("Moderators");
    world.post_order(&order(701).by("Lena"));
    world.add_user(702, "Mo", Some("mo"));
    world.post_as_user(702, 702, "hi, my ID is 5", None);
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let tg = Tg::connect(&server);

    let mut dialogs = tg.client.iter_dialogs();
    let mut seen = Vec::new();
    while let Some(d) = within("dialogs", dialogs.next()).await.unwrap() {
        let r = d.peer_ref();
        seen.push((r.id.bot_api_dialog_id().unwrap(), r.auth.hash(), d.peer().name().map(str::to_owned)));
    }
    seen.sort();
    let expected_ids = {
        let mut v = vec![moderators, world.tribute_chat(), 701, 702];
        v.sort();
        v
    };
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), expected_ids);
    for (id, hash, _) in &seen {
        assert_eq!(*hash, server.peer_ref(*id).auth.hash(), "access hash of {id}");
    }
    assert!(seen.contains(&(moderators, server.peer_ref(moderators).auth.hash(), Some("Moderators".into()))));

    let mo = tg.client.resolve_username("mo").await.unwrap().expect("@mo exists");
    assert_eq!(mo.id().bot_api_dialog_id(), Some(702));
    tg.stop().await;
    server.shutdown().await;
}

#[tokio::test]
async fn while_the_sim_link_is_down_nothing_answers_and_the_client_recovers_after() {
    let world = SimWorld::new(SimConfig::default());
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let mut tg =
        Tg::with(Arc::new(server.memory_session()), ConnectionParams { retry_policy: Box::new(NoRetries), ..params() });
    let mut stream = tg.stream(false).await;
    assert!(within("get_me", tg.client.get_me()).await.is_ok());

    world.disconnect();
    eventually("the connections to drop", || async { (server.connection_count() == 0).then_some(()) }).await;
    let err = within("get_me while down", tg.client.get_me()).await.unwrap_err();
    assert!(matches!(err, InvocationError::Io(_) | InvocationError::Dropped(_)), "{err}");

    world.reconnect();
    assert!(within("get_me after", tg.client.get_me()).await.is_ok());
    let id = world.post_order(&order(801).by("Nia"));
    assert_eq!(next_message(&mut stream).await.id(), id);
    tg.stop().await;
    server.shutdown().await;
}

//! No single input stops a task: hostile moderator commands get a polite
//! answer, a message whose handling panics is retried, quarantined with one
//! card and the contact task goes on, and `/healthz` names a dead task.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tribute_assistant::daemon::{ItemHook, ITEM_ATTEMPTS};
use tribute_assistant::runtime::supervisor::supervise;
use tribute_assistant::telegram::{Message, MessageId};
use tribute_testbed::sandbox::{SandboxOptions, Transport};

use crate::support::app::TestApp;
use crate::support::wait::eventually;

/// Our account's answer in the moderator chat to message `id`, once there is one.
async fn answer_to(app: &TestApp, id: MessageId) -> Message {
    eventually(&format!("an answer to moderator message {id}"), || async {
        app.world.messages(app.moderator_chat).into_iter().find(|m| m.outgoing && m.reply_to == Some(id))
    })
    .await
}

#[tokio::test]
async fn malformed_moderator_commands_get_a_polite_answer_and_the_desk_goes_on() {
    let app = TestApp::spawn_with(SandboxOptions::default()).await;
    // 4096 UTF-16 units, the most Telegram accepts in one message.
    let long = format!("/note {}", "я".repeat(4090));
    let commands = [
        "/report 7д",
        "/report 🙂",
        "/report 1🙂",
        "/report 99999999999999999999d",
        "/report 1000w",
        "/learn G99999999999999999999",
        "/case C99999999999999999999 99999999999999999999",
        "/case \u{202e}C1\u{200b}",
        "/",
        "/\u{200f}",
        "/🙂",
        long.as_str(),
    ];
    for text in commands {
        let id = app.moderator_says(text);
        let answer = answer_to(&app, id).await;
        assert!(!answer.text.is_empty(), "{text:?} got an empty answer");
        if text.starts_with("/report") {
            assert!(
                answer.text.contains("Usage: /report") || answer.text.contains("at most a year"),
                "{text:?}: {}",
                answer.text
            );
        }
    }
    // After all of it the desk still serves: /cases is answered.
    let id = app.moderator_says("/cases");
    answer_to(&app, id).await;
    let quarantined =
        app.store().all_cases().await.unwrap().into_iter().filter(|c| c.reason.as_str() == "unhandled").count();
    assert_eq!(quarantined, 0, "no command needed the quarantine");
    app.shutdown().await;
}

#[tokio::test]
async fn a_message_whose_handling_panics_is_quarantined_once_and_the_contact_task_goes_on() {
    let tries = Arc::new(AtomicU32::new(0));
    let seen = tries.clone();
    let hook = ItemHook(Arc::new(move |m: &Message| {
        if m.text.contains("POISON") {
            seen.fetch_add(1, Ordering::SeqCst);
            panic!("injected: this message cannot be handled");
        }
    }));
    let opts = SandboxOptions { ops_listener: true, item_hook: Some(hook), ..SandboxOptions::default() };
    let app = TestApp::spawn_with(opts).await;
    let customer = 55_501;
    app.world.add_user(customer, "Vera", None);
    let poison = app.world.post_as_user(customer, customer, "POISON: what is 2+2?", None);
    let card = app.wait_card("could not be handled").await;
    assert!(card.text.contains("POISON"), "the card shows the message: {}", card.text);
    assert!(card.text.contains("injected: this message cannot be handled"), "and why: {}", card.text);
    assert_eq!(tries.load(Ordering::SeqCst), ITEM_ATTEMPTS, "tried the bounded number of times");

    // The task goes on: the next customer's question and a moderator command are handled.
    let other = 55_502;
    app.world.add_user(other, "Petr", None);
    app.world.post_as_user(other, other, "Where is my order?", None);
    app.wait_card("Where is my order?").await;
    let id = app.moderator_says("/cases");
    answer_to(&app, id).await;

    let row = app.store().inbound(customer, poison).await.unwrap().expect("stored");
    assert_eq!(row.attempts, ITEM_ATTEMPTS);
    assert!(row.error.unwrap().contains("panicked"));
    let notices =
        app.world.messages(app.moderator_chat).iter().filter(|m| m.text.contains("could not be handled")).count();
    assert_eq!(notices, 1, "one notice, not one per attempt");
    assert_eq!(tries.load(Ordering::SeqCst), ITEM_ATTEMPTS, "never tried again once quarantined");

    let metrics = crate::support::http().get(format!("{}/metrics", app.ops_url().unwrap())).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(text.contains("tribute_assistant_items_quarantined_total{task=\"contact\"} 1\n"), "{text}");
    assert!(text.contains(&format!("tribute_assistant_task_panics_total{{task=\"contact\"}} {ITEM_ATTEMPTS}\n")));
    assert!(text.contains("tribute_assistant_task_up{task=\"contact\"} 1\n"), "{text}");
    let health = crate::support::http().get(format!("{}/healthz", app.ops_url().unwrap())).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "a quarantined item is not a dead task");
    app.shutdown().await;
}

#[tokio::test]
async fn healthz_turns_503_naming_a_task_that_died_until_it_runs_again() {
    let app = TestApp::spawn_with(SandboxOptions { ops_listener: true, ..SandboxOptions::default() }).await;
    let url = format!("{}/healthz", app.ops_url().unwrap());
    let get = || async {
        let r = crate::support::http().get(&url).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (status, body) = eventually("the daemon's tasks on /healthz", || async {
        let (status, body) = get().await;
        (body["tasks"].as_array().unwrap().len() == 4).then_some((status, body))
    })
    .await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["tasks"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["cards", "contact", "orders", "reread"], "{body}");

    // A task of the same supervisor that dies once and is restarted after its backoff.
    let board = app.ops_state().unwrap().tasks.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runs = Arc::new(AtomicU32::new(0));
    let r = runs.clone();
    let task = board.register("doomed", Duration::from_secs(60));
    let supervised = tokio::spawn(supervise(task, stopped, move || {
        let r = r.clone();
        async move {
            if r.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("doomed on its first run");
            }
            std::future::pending::<Result<(), ()>>().await
        }
    }));
    let body = eventually("/healthz to turn 503", || async {
        let (status, body) = get().await;
        (status == 503).then_some(body)
    })
    .await;
    let doomed = body["tasks"].as_array().unwrap().iter().find(|t| t["name"] == "doomed").unwrap().clone();
    assert_eq!(doomed["ok"], false);
    assert!(doomed["problem"].as_str().unwrap().contains("doomed on its first run"), "{doomed}");
    eventually("/healthz to recover once the task runs again", || async { (get().await.0 == 200).then_some(()) }).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    stop.send(true).unwrap();
    supervised.abort();
    app.shutdown().await;
}

/// A stranger's question whose live update Telegram dropped (the update
/// buffer overflowed) is found by the re-read of the recently active
/// private chats, though no dialogue waits for them.
#[tokio::test]
async fn a_stranger_s_message_whose_update_was_lost_is_found_by_the_re_read() {
    let app = TestApp::spawn_with(SandboxOptions::default()).await;
    let stranger = 55_601;
    app.world.add_user(stranger, "Gleb", None);
    app.world.set_update_buffer(Some(0));
    let id = app.world.post_as_user(stranger, stranger, "Where is my order, please?", None);
    app.wait_card("Where is my order, please?").await;
    app.world.set_update_buffer(None);
    assert!(app.store().inbound(stranger, id).await.unwrap().is_some(), "stored from the re-read");
    assert!(
        app.world.faults_injected().get("update_overflow").copied().unwrap_or(0) >= 1,
        "the live update was really lost: {:?}",
        app.world.faults_injected()
    );
    app.shutdown().await;
}

/// The same lost update, behind a crowd: 250 strangers wrote after it, so
/// its chat is on the third page of the dialogs list. The re-read pages
/// back to its last pass and finds it.
async fn a_lost_message_behind_a_crowd_is_found(transport: Transport) {
    let app = TestApp::spawn_with(SandboxOptions { transport, ..Default::default() }).await;
    let stranger = 55_700;
    app.world.add_user(stranger, "Gleb", None);
    app.world.set_update_buffer(Some(0));
    let id = app.world.post_as_user(stranger, stranger, "Where is my order, please?", None);
    app.world.set_update_buffer(None);
    for n in 1..=250 {
        app.world.add_user(stranger + n, "Crowd", None);
        app.world.post_as_user(stranger + n, stranger + n, "hi", None);
    }
    eventually("the lost message stored by the re-read", || async {
        app.store().inbound(stranger, id).await.unwrap().map(|_| ())
    })
    .await;
    assert_eq!(app.world.faults_injected().get("update_overflow").copied(), Some(1), "only its update was lost");
    app.shutdown().await;
}

#[tokio::test]
async fn a_lost_message_behind_a_crowd_of_newer_chats_is_found() {
    a_lost_message_behind_a_crowd_is_found(Transport::Sim).await;
}

/// Over MTProto: the grammers adapter follows `messages.dialogsSlice` pages.
#[tokio::test]
async fn a_lost_message_behind_a_crowd_is_found_over_mtproto() {
    a_lost_message_behind_a_crowd_is_found(Transport::Mtproto).await;
}

/// A live update that comes after a lost one does not hide it: the re-read
/// starts where the last one stopped (or before the last pass, for a chat
/// new since), not at the newest message stored.
#[tokio::test]
async fn a_lost_message_followed_by_a_live_one_is_found() {
    let app = TestApp::spawn_with(SandboxOptions::default()).await;
    for (stranger, settled) in [(55_801, false), (55_802, true)] {
        app.world.add_user(stranger, "Dana", None);
        if settled {
            // Known to the re-read before the loss: its chat was paged through.
            let first = app.world.post_as_user(stranger, stranger, "hello", None);
            eventually("the first message stored", || async {
                app.store().inbound(stranger, first).await.unwrap().map(|_| ())
            })
            .await;
        }
        app.world.set_update_buffer(Some(0));
        let lost = app.world.post_as_user(stranger, stranger, "my ID is 998877", None);
        app.world.set_update_buffer(None);
        let live = app.world.post_as_user(stranger, stranger, "did you get it?", None);
        eventually("the live message stored", || async {
            app.store().inbound(stranger, live).await.unwrap().map(|_| ())
        })
        .await;
        eventually("the lost one found by the re-read", || async {
            app.store().inbound(stranger, lost).await.unwrap().map(|_| ())
        })
        .await;
    }
    app.shutdown().await;
}

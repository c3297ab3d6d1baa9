//! The first login, rehearsed with processes only: `testbed
//! --rehearse-login` (an MTProto server nobody is logged in to, a session
//! file holding only its key), the real binary's `login` typed into
//! through stdin (phone, a wrong code, the right one from the testbed's
//! line, a wrong 2FA password, the right one), then the daemon `run` with
//! that session finishing an order.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::support::testbed::{next_line, TestbedProcess};
use crate::support::wait::{try_eventually, SETTLE};

const EXE: &str = env!("CARGO_BIN_EXE_tribute-assistant");

/// A running `testbed --rehearse-login` and its stdout lines.
struct RehearsalTestbed {
    process: TestbedProcess,
    _dir: tempfile::TempDir,
}

impl RehearsalTestbed {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let process = TestbedProcess::start(&["--rehearse-login"], dir.path(), &[], Stdio::null()).await;
        Self { process, _dir: dir }
    }

    fn config(&self) -> PathBuf {
        PathBuf::from(self.process.field("config"))
    }

    fn control(&self) -> String {
        self.process.field("control")
    }

    fn login(&self, key: &str) -> String {
        let ready = &self.process.ready;
        ready["login"][key].as_str().unwrap_or_else(|| panic!("login.{key} in {ready}")).to_owned()
    }

    /// The next login code the testbed "sends".
    async fn login_code(&mut self) -> String {
        let line = next_line(&mut self.process.lines).await;
        let sent: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        sent["login_code"].as_str().unwrap_or_else(|| panic!("a login code in {line}")).to_owned()
    }

    async fn stop(mut self) {
        unsafe { libc::kill(self.process.child.id().unwrap() as i32, libc::SIGTERM) };
        let status =
            tokio::time::timeout(SETTLE, self.process.child.wait()).await.expect("the testbed exits in time").unwrap();
        assert!(status.success(), "{status}");
    }
}

/// A command of the binary with the testbed's config.
fn command(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(EXE);
    cmd.arg("--config").arg(config).args(["--log", "warn"]).args(args).kill_on_drop(true);
    cmd
}

async fn output(config: &Path, args: &[&str]) -> std::process::Output {
    let child =
        command(config, args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    tokio::time::timeout(SETTLE, child.wait_with_output()).await.expect("the command ends in time").unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs `args` typing into its prompts: the phone, then (once the testbed
/// sent the login code) what `after_code` makes of the code. Returns the
/// output once the command ended.
async fn type_into(
    tb: &mut RehearsalTestbed,
    args: &[&str],
    after_code: impl FnOnce(&str) -> String,
) -> std::process::Output {
    let config = tb.config();
    let mut child =
        command(&config, args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{}\n", tb.login("phone")).as_bytes()).await.unwrap();
    let code = tb.login_code().await;
    stdin.write_all(after_code(&code).as_bytes()).await.unwrap();
    drop(stdin);
    tokio::time::timeout(SETTLE, child.wait_with_output()).await.expect("the command ends in time").unwrap()
}

/// Logs in through `login`'s prompts: a wrong code, the right one, a wrong
/// password and the right one. Returns what `login` printed.
async fn rehearse_login(tb: &mut RehearsalTestbed) -> String {
    let password = tb.login("password");
    let out = type_into(tb, &["login"], |code| {
        let wrong_code = if code == "00000" { "11111" } else { "00000" };
        format!("{wrong_code}\n{code}\nnot-{password}\n{password}\n")
    })
    .await;
    let printed = text(&out);
    assert!(out.status.success(), "login failed: {printed}");
    printed
}

/// Posts an order through the control API and waits until it is delivered.
async fn order_is_delivered(tb: &RehearsalTestbed, n: u64, account: &str) {
    let control = tb.control();
    let http = crate::support::http();
    http.post(format!("{control}/backend/pending"))
        .json(&serde_json::json!({"account_id": account, "product": "100 Diamonds"}))
        .send()
        .await
        .unwrap();
    let order = serde_json::json!({"customer_id": 500 + n, "customer_name": "Иван", "product": "100 Diamonds",
        "price": "€5.00", "details": format!("ID {account}")});
    assert!(http.post(format!("{control}/orders")).json(&order).send().await.unwrap().status().is_success());
    let delivered = try_eventually(|| async {
        let s: serde_json::Value = http.get(format!("{control}/stats")).send().await.ok()?.json().await.ok()?;
        (s["totals"]["delivered"].as_u64() == Some(n)).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "order {n} was not delivered in {SETTLE:?}");
}

fn session_path(config: &Path) -> PathBuf {
    let cfg: toml::Value = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    PathBuf::from(cfg["telegram"]["session_file"].as_str().unwrap())
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_login_is_rehearsed_against_the_testbed_and_the_daemon_runs_with_its_session() {
    let mut tb = RehearsalTestbed::start().await;
    let config = tb.config();
    let cfg = std::fs::read_to_string(&config).unwrap();
    assert!(cfg.contains(&format!("server = \"{}\"", tb.process.field("mtproto"))), "{cfg}");

    // Nobody is logged in yet: the session holds the key only.
    let check = output(&config, &["login", "--check"]).await;
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(text(&check).contains("never logged in"), "{}", text(&check));
    let run = output(&config, &["run"]).await;
    assert!(!run.status.success());
    assert!(text(&run).contains("run `tribute-assistant login` first"), "{}", text(&run));

    let printed = rehearse_login(&mut tb).await;
    assert!(printed.contains("That code is wrong"), "{printed}");
    assert!(printed.contains("(hint: the testbed's ready line says it)"), "the 2FA hint is shown: {printed}");
    assert!(printed.contains("Wrong password; try again."), "{printed}");
    assert!(printed.contains("Logged in as Tribute Assistant, user id 1000."), "{printed}");
    let next = format!("`tribute-assistant --config {} chats`", config.display());
    assert!(printed.contains(&next), "the next step names the config the login used: {printed}");
    #[cfg(unix)]
    assert_eq!(mode(&session_path(&config)), 0o600);

    let check = output(&config, &["login", "--check"]).await;
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("user id 1000"), "{}", text(&check));
    // `chats` lists what the config needs, with the session `login` wrote.
    let chats = output(&config, &["chats"]).await;
    assert!(chats.status.success(), "{}", text(&chats));
    let listing = text(&chats);
    assert!(listing.contains("93372553  bot      Tribute (@tribute)   ← the Tribute bot"), "{listing}");
    assert!(listing.contains("-1000000000001  group    Moderators"), "{listing}");
    assert!(listing.contains("7001  Masha (moderator) (@masha_mod)"), "{listing}");
    assert!(listing.contains("must be a group this account is a member of"), "{listing}");
    // A second `login` has nothing to do.
    let again = output(&config, &["login"]).await;
    assert!(text(&again).contains("Already logged in as Tribute Assistant"), "{}", text(&again));

    // The daemon runs with that session and finishes an order.
    let mut daemon = command(&config, &["run"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    order_is_delivered(&tb, 1, "111111").await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    tb.stop().await;
}

/// The adapter's view of the account over MTProto: every kind of chat with
/// the id the config takes, and a group's members (as set, or else who
/// wrote in it).
#[tokio::test]
async fn the_directory_lists_users_bots_groups_and_channels_and_a_groups_members() {
    use std::sync::Arc;
    use std::time::Duration;
    use tribute_assistant::telegram::grammers::client::start_pool;
    use tribute_assistant::telegram::grammers::directory::{ChatKind, Directory};
    use tribute_testbed::mtproto::MtprotoServer;
    use tribute_testbed::sim::{SimConfig, SimWorld};

    let world = SimWorld::new(SimConfig::default());
    let group = world.create_group("Mods");
    world.add_user(7001, "Masha", Some("masha"));
    world.add_user(7002, "Petya", None);
    world.post_as_user(group, 7001, "hello", None);
    let channel = world.create_channel("News");
    world.post_in_channel(channel, "news");
    world.post_from_bot(4242, "spam_bot", "win");
    let server = MtprotoServer::start(world.clone()).await.unwrap();
    let conn = start_pool(Arc::new(server.memory_session()), 1, Duration::from_secs(1));
    let dir = tokio::time::timeout(SETTLE, Directory::read(&conn.client, 100)).await.unwrap().unwrap();
    let kind = |id| dir.get(id).map(|c| c.kind);
    assert_eq!(kind(group), Some(ChatKind::Group));
    assert_eq!(kind(channel), Some(ChatKind::Channel));
    assert_eq!(kind(4242), Some(ChatKind::Bot));
    assert_eq!(kind(93372553), Some(ChatKind::Bot));
    assert_eq!(kind(7001), Some(ChatKind::User));
    assert_eq!(dir.get(7001).unwrap().username.as_deref(), Some("masha"));
    assert_eq!(dir.tribute_bot(93372553).map(|c| c.id), Some(93372553));
    assert_eq!(dir.tribute_bot(1).map(|c| c.id), Some(93372553), "found by @tribute when the id is wrong");
    assert_eq!(dir.groups().map(|g| g.id).collect::<Vec<_>>(), vec![group]);

    let ids = |m: Vec<tribute_assistant::telegram::grammers::directory::Member>| {
        m.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    let (members, total) = dir.members(&conn.client, group, 50).await.unwrap();
    assert_eq!((ids(members), total), (vec![1000, 7001], 2), "our account and who wrote there");
    server.set_members(group, vec![1000, 7001, 7002]);
    let (members, total) = dir.members(&conn.client, group, 2).await.unwrap();
    assert_eq!((ids(members), total), (vec![1000, 7001], 3), "cut at the limit, the total told");
    conn.pool.quit();
    server.shutdown().await;
}

/// `init` from the testbed's config as the starting point: it logs the
/// account in, offers the account's chats, re-asks what does not fit,
/// checks the backend handshake, writes a config (secret 0600) with which
/// the daemon finishes an order, and says what "Order Details" must ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_asks_offers_the_accounts_chats_checks_the_backend_and_writes_a_config_the_daemon_runs_with() {
    let mut tb = RehearsalTestbed::start().await;
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("config.toml");
    let password = tb.login("password");
    let out_arg = output.display().to_string();
    let answers = |code: &str| {
        [
            code, &password, "",      // the Tribute bot: the one found
            "5",     // not a listed group: asked again
            "1",     // the moderator group
            "42",    // not a member: asked again
            "7001",  // the moderator
            "",      // the backend URL: the testbed's config's
            "",      // the secret: the config's
            "[",     // not a regex: asked again
            "",      // the default pattern
            "12-34", // an example it cannot read: asked again
            "", "123456", // an example it reads
        ]
        .map(|l| format!("{l}\n"))
        .concat()
    };
    let out = type_into(&mut tb, &["init", "--output", &out_arg], answers).await;
    let printed = text(&out);
    assert!(out.status.success(), "init failed: {printed}");
    assert!(printed.contains("Logged in as Tribute Assistant"), "{printed}");
    assert!(printed.contains("1) Moderators (id -1000000000001)"), "the group is offered: {printed}");
    assert!(printed.contains("This account must be a member of it"), "{printed}");
    assert!(printed.contains("1) Masha (moderator) (@masha_mod) (user id 7001)"), "its members are offered: {printed}");
    assert!(printed.contains("Choose one of the numbers or ids above."), "{printed}");
    assert!(printed.contains("\"42\" is not one of the numbers or user ids above."), "{printed}");
    assert!(printed.contains("That pattern does not work"), "{printed}");
    assert!(printed.contains("The pattern finds no ID in \"My ID: 12-34\""), "{printed}");
    assert!(printed.contains("✔ backend handshake"), "{printed}");
    assert!(printed.contains("in \"Order Details\""), "{printed}");

    let written: toml::Value = toml::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    assert_eq!(written["telegram"]["tribute_chat"].as_integer(), Some(93372553));
    assert_eq!(written["telegram"]["moderator_chat"].as_integer(), Some(-1000000000001));
    assert_eq!(written["moderator"]["moderators"].as_array().unwrap(), &vec![toml::Value::Integer(7001)]);
    let secret = PathBuf::from(written["backend"]["secret_file"].as_str().unwrap());
    assert_eq!(secret.parent(), Some(out_dir.path()));
    #[cfg(unix)]
    assert_eq!(mode(&secret), 0o600);

    // The daemon runs with the config `init` wrote.
    let mut daemon = command(&output, &["run"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    order_is_delivered(&tb, 1, "222222").await;
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
    tb.stop().await;
}

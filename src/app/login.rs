//! `tribute-assistant login`: interactive login of the dedicated Telegram
//! account (phone, code, 2FA password), writing the session file (0600)
//! under the data dir. `login --check` says who is logged in (exit 0) or
//! that nobody is (exit 1).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ::grammers_client::{Client, SignInError};
use anyhow::{bail, Context};
use secrecy::ExposeSecret;

use crate::app::config::FileConfig;
use crate::telegram::grammers::client::{start_pool, Connection};
use crate::telegram::grammers::session::{open_existing_session, open_session_at, point_at_server, stored_self_id};
use crate::telegram::grammers::FileSession;
use crate::telegram::TelegramApi;

#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// Only report who is logged in: exit 0 if the session works, 1 otherwise.
    #[arg(long)]
    pub check: bool,
    /// Phone number in international format (asked for when absent).
    #[arg(long)]
    pub phone: Option<String>,
}

/// How long to wait for Telegram before giving up on one step.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(args: LoginArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let file = match config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let session_path = file.session_path(&env);
    if args.check {
        return check(&file, &session_path, &env).await;
    }
    let api = TelegramApi::require(&file.telegram, &env)?;
    sign_in(&file, &api, args.phone, &mut Prompt::new()).await?;
    // The same config the login used, or the next command reads another one.
    let with = config.map(|p| format!(" --config {}", p.display())).unwrap_or_default();
    println!(
        "Next: `tribute-assistant{with} chats` lists the ids the config needs; `tribute-assistant{with} run` starts the daemon."
    );
    Ok(ExitCode::SUCCESS)
}

/// Logs the account in through `prompt` (phone, code, 2FA password) unless
/// the session already is, writing the session file (0600).
pub(super) async fn sign_in(
    file: &FileConfig,
    api: &TelegramApi,
    phone: Option<String>,
    prompt: &mut Prompt,
) -> anyhow::Result<()> {
    let session_path = file.session_path(&|k: &str| std::env::var(k).ok());
    let session = open_session_at(&session_path, file.telegram.server_addr()?).await?;
    let conn = start_pool(session.clone(), api.api_id, Duration::from_secs(5));
    let result = login(&conn.client, &session, api, phone, &session_path, file.telegram.tribute_chat, prompt).await;
    finish(conn, &session).await;
    result
}

/// Stops the connection and closes the session file.
pub(super) async fn finish(conn: Connection, session: &FileSession) {
    conn.pool.quit();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.runner).await;
    session.close().await;
}

fn not_logged_in(path: &Path, why: &str) -> ExitCode {
    eprintln!("Not logged in: {why} ({}). Run `tribute-assistant login` to log in.", path.display());
    ExitCode::from(1)
}

async fn check(file: &FileConfig, path: &Path, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<ExitCode> {
    let Some(session) = open_existing_session(path).await? else {
        return Ok(not_logged_in(path, "there is no Telegram session file"));
    };
    if let Some(server) = file.telegram.server_addr()? {
        point_at_server(&*session, server).await?;
    }
    let Some(stored_id) = stored_self_id(&*session).await else {
        session.close().await;
        return Ok(not_logged_in(path, "the session file was never logged in"));
    };
    let api = match TelegramApi::require(&file.telegram, env) {
        Ok(api) => api,
        Err(e) => {
            session.close().await;
            eprintln!("The session belongs to user id {stored_id}, but it cannot be checked: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let conn = start_pool(session.clone(), api.api_id, Duration::from_secs(5));
    let me = tokio::time::timeout(STEP_TIMEOUT, conn.client.get_me()).await;
    let code = match me {
        Ok(Ok(user)) => {
            let username = user.username().map(|u| format!(" (@{u})")).unwrap_or_default();
            println!(
                "Logged in as {}{username}, user id {}",
                user.full_name(),
                user.id().bare_id().unwrap_or(stored_id)
            );
            println!("Session: {}", path.display());
            ExitCode::SUCCESS
        }
        Ok(Err(e)) if matches!(&e, ::grammers_client::InvocationError::Rpc(r) if r.code == 401) => {
            not_logged_in(path, &format!("Telegram no longer accepts the session of user id {stored_id} ({e})"))
        }
        Ok(Err(e)) => {
            eprintln!("The session belongs to user id {stored_id}, but Telegram could not confirm it: {e}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!(
                "The session belongs to user id {stored_id}, but Telegram did not answer within {}s",
                STEP_TIMEOUT.as_secs()
            );
            ExitCode::from(1)
        }
    };
    finish(conn, &session).await;
    Ok(code)
}

/// Reads answers from stdin; hides the typed password on a terminal.
pub(super) struct Prompt {
    lines: std::io::Lines<std::io::StdinLock<'static>>,
}

impl Prompt {
    pub(super) fn new() -> Self {
        Self { lines: std::io::stdin().lock().lines() }
    }

    pub(super) fn ask(&mut self, question: &str) -> anyhow::Result<String> {
        print!("{question}");
        std::io::stdout().flush()?;
        match self.lines.next() {
            Some(line) => Ok(line.context("Failed to read stdin")?.trim().to_owned()),
            None => bail!("stdin closed: the login was not finished"),
        }
    }

    pub(super) fn ask_secret(&mut self, question: &str) -> anyhow::Result<String> {
        let hide = std::io::stdin().is_terminal() && cfg!(unix);
        if hide {
            let _ = std::process::Command::new("stty").arg("-echo").stdin(std::process::Stdio::inherit()).status();
        }
        let answer = self.ask(question);
        if hide {
            let _ = std::process::Command::new("stty").arg("echo").stdin(std::process::Stdio::inherit()).status();
            println!();
        }
        answer
    }
}

/// A person-readable explanation of a login-time Telegram error.
pub fn explain_login_error(e: &::grammers_client::InvocationError) -> String {
    use ::grammers_client::InvocationError as I;
    match e {
        I::Rpc(r) if r.code == 420 || r.name.contains("FLOOD") => format!(
            "Telegram asks to wait {} before the next attempt (too many login attempts). Try again later.",
            r.value.map(|s| format!("{s} seconds")).unwrap_or_else(|| "a while".into())
        ),
        I::Rpc(r) if r.name == "PHONE_NUMBER_INVALID" => {
            "That is not a valid phone number; use the international format, e.g. +44 7700 900123.".into()
        }
        I::Rpc(r) if r.name == "PHONE_NUMBER_BANNED" => "Telegram has banned this phone number.".into(),
        I::Rpc(r) if r.name == "PHONE_NUMBER_UNOCCUPIED" => {
            "This phone number has no Telegram account. Create the account in an official Telegram app first.".into()
        }
        I::Rpc(r) if r.name == "API_ID_INVALID" || r.name == "API_ID_PUBLISHED_FLOOD" => {
            "Telegram rejected the api_id/api_hash: check them at https://my.telegram.org.".into()
        }
        I::Rpc(r) if r.name == "PHONE_PASSWORD_FLOOD" => {
            "Too many wrong passwords; Telegram blocks further attempts for a while.".into()
        }
        I::Io(_) | I::Transport(_) | I::Dropped(_) => format!("Could not reach Telegram: {e}"),
        other => format!("Telegram refused: {other}"),
    }
}

async fn step<T>(f: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| anyhow::anyhow!("Telegram did not answer within {}s", STEP_TIMEOUT.as_secs()))
}

async fn login(
    client: &Client,
    session: &Arc<FileSession>,
    api: &TelegramApi,
    phone: Option<String>,
    path: &Path,
    tribute_chat: i64,
    prompt: &mut Prompt,
) -> anyhow::Result<()> {
    if stored_self_id(&**session).await.is_some() {
        match step(client.is_authorized()).await? {
            Ok(true) => {
                let me = step(client.get_me()).await?.map_err(|e| anyhow::anyhow!(explain_login_error(&e)))?;
                println!(
                    "Already logged in as {} (user id {}). To log in as someone else, delete {} first.",
                    me.full_name(),
                    me.id().bare_id().unwrap_or_default(),
                    path.display()
                );
                return Ok(());
            }
            Ok(false) => println!("The saved session is no longer valid; logging in again."),
            Err(e) => bail!(explain_login_error(&e)),
        }
    }
    let (phone, token) = {
        let mut given = phone;
        loop {
            let phone = match given.take() {
                Some(p) => p,
                None => prompt
                    .ask("Phone number of the dedicated account (international format, e.g. +44 7700 900123): ")?,
            };
            if phone.is_empty() {
                continue;
            }
            match step(client.request_login_code(&phone, api.api_hash.expose_secret())).await? {
                Ok(token) => break (phone, token),
                Err(e) if e.is("PHONE_NUMBER_INVALID") => eprintln!("{}", explain_login_error(&e)),
                Err(e) => bail!(explain_login_error(&e)),
            }
        }
    };
    println!("Telegram sent a login code to {phone} (in the Telegram app, or by SMS).");
    let mut tries = 0;
    let user = loop {
        let code = prompt.ask("Login code: ")?;
        match step(client.sign_in(&token, &code)).await? {
            Ok(user) => break user,
            Err(SignInError::InvalidCode) => {
                tries += 1;
                if tries >= 3 {
                    bail!("Wrong code three times. Run `tribute-assistant login` again to get a new code.");
                }
                eprintln!("That code is wrong or has expired; try again.");
            }
            Err(SignInError::SignUpRequired) => bail!(
                "{phone} has no Telegram account. Create it in an official Telegram app first (third-party apps cannot sign up), then log in here."
            ),
            Err(SignInError::PasswordRequired(mut token)) => {
                break loop {
                    let hint = token.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default();
                    let password = prompt.ask_secret(&format!("Two-step verification password{hint}: "))?;
                    match step(client.check_password(token, password.as_bytes())).await? {
                        Ok(user) => break user,
                        Err(SignInError::InvalidPassword(again)) => {
                            eprintln!("Wrong password; try again.");
                            token = again;
                        }
                        Err(SignInError::Other(e)) => bail!(explain_login_error(&e)),
                        Err(e) => bail!("Login failed: {e}"),
                    }
                };
            }
            Err(SignInError::InvalidPassword(_)) => bail!("Login failed: unexpected password error"),
            Err(SignInError::Other(e)) => bail!(explain_login_error(&e)),
        }
    };
    let username = user.username().map(|u| format!(" (@{u})")).unwrap_or_default();
    println!("Logged in as {}{username}, user id {}.", user.full_name(), user.id().bare_id().unwrap_or_default());
    // Cache the chats we will talk in (the Tribute bot above all) with their access hashes.
    let mut dialogs = client.iter_dialogs();
    let mut found_tribute = false;
    let read = step(async {
        while let Some(d) = dialogs.next().await? {
            if d.peer_id().bot_api_dialog_id() == Some(tribute_chat) {
                found_tribute = true;
            }
        }
        Ok::<_, ::grammers_client::InvocationError>(())
    })
    .await;
    match read {
        Ok(Ok(())) if !found_tribute => println!(
            "Note: this account has no chat with the Tribute bot (id {tribute_chat}) yet; open @tribute in Telegram and press Start."
        ),
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("Note: could not read the chat list ({e}); it is read again when the daemon starts."),
        Err(e) => eprintln!("Note: {e:#} while reading the chat list; it is read again when the daemon starts."),
    }
    println!("Session saved to {} (readable by this user only).", path.display());
    Ok(())
}

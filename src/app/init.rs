//! `tribute-assistant init`: the guided setup. Asks the few questions a
//! config needs (through stdin, so it can be scripted), logs the account in
//! if it is not yet, offers the account's own chats as the choices (the
//! Tribute bot, the moderator group, its members as moderators), checks the
//! backend handshake like `check`, and writes a commented `config.toml`
//! with the secrets in 0600 files beside it. Ends with what the Tribute
//! product must ask customers to type in "Order Details".
//!
//! With `--config`, that file is the starting point: its data dir, Telegram
//! credentials, session, server and backend are offered as the defaults
//! (the testbed's config rehearses the whole setup).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use secrecy::{ExposeSecret, SecretString};

use super::chats::{self, AccountChats};
use super::check::{backend_line, Status};
use super::config::{Config, FileConfig};
use super::login::{sign_in, Prompt};
use crate::telegram::grammers::directory::ChatEntry;
use crate::telegram::{ChatId, TelegramApi, UserId, API_HASH_ENV, API_ID_ENV};
use crate::tribute::{AccountExtraction, ParserConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Where to write the config; the secret files go beside it.
    #[arg(long, default_value = "config.toml")]
    pub output: PathBuf,
    /// Replace an existing config and secret files.
    #[arg(long)]
    pub force: bool,
}

/// What the questions decided.
struct Answers {
    data_dir: PathBuf,
    api_id: i32,
    api_hash_file: Option<PathBuf>,
    session_file: Option<PathBuf>,
    server: Option<String>,
    tribute_chat: ChatId,
    moderator_chat: Option<ChatEntry>,
    moderators: Vec<(UserId, String)>,
    backend_url: String,
    secret_file: PathBuf,
    account_pattern: Option<String>,
}

pub async fn run(args: InitArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let output = absolute(&args.output)?;
    let dir = output.parent().context("--output has no directory")?.to_path_buf();
    let secret_file = dir.join("backend.secret");
    let api_hash_path = dir.join("api_hash");
    if !args.force {
        for p in [&output, &secret_file] {
            if p.exists() {
                bail!("{} exists; pass --force to replace it (or --output elsewhere)", p.display());
            }
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("Failed to create {}", dir.display()))?;
    let mut base = match config {
        Some(p) if p.exists() => FileConfig::load(p)?,
        _ => FileConfig::default(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let mut prompt = Prompt::new();
    println!("Setting up tribute-assistant: {} will be written.\n", output.display());

    // 1. Telegram: the application's credentials, then the account.
    let data_dir = match config {
        Some(_) => base.resolved_data_dir(&env),
        None => PathBuf::from(ask_default(&mut prompt, "Data directory (database, session, index)", "./data")?),
    };
    base.data_dir = data_dir.clone();
    let (api, api_hash_file) = match TelegramApi::resolve(&base.telegram, &env)? {
        Some(api) => {
            println!(
                "Telegram API credentials: api_id {} (from the config or {API_ID_ENV}/{API_HASH_ENV}).",
                api.api_id
            );
            (api, base.telegram.api_hash_file.clone())
        }
        None => {
            println!(
                "Telegram API credentials: create an application at https://my.telegram.org (API development tools)."
            );
            let api_id = loop {
                match prompt.ask("api_id: ")?.parse::<i32>() {
                    Ok(id) if id > 0 => break id,
                    _ => eprintln!("The api_id is a positive number, e.g. 1234567."),
                }
            };
            let hash = loop {
                let h = prompt.ask_secret("api_hash (kept in a 0600 file beside the config): ")?;
                if !h.is_empty() {
                    break h;
                }
            };
            write_private(&api_hash_path, &hash, args.force)?;
            base.telegram.api_id = Some(api_id);
            base.telegram.api_hash_file = Some(api_hash_path.clone());
            (TelegramApi { api_id, api_hash: SecretString::from(hash) }, Some(api_hash_path.clone()))
        }
    };
    println!();
    sign_in(&base, &api, None, &mut prompt).await?;
    println!();
    let account = chats::read(&base, None).await?;

    // 2. The chats.
    let tribute_chat = choose_tribute(&mut prompt, &account, base.telegram.tribute_chat)?;
    let moderator_chat = choose_group(&mut prompt, &account)?;
    let moderators = match &moderator_chat {
        Some(g) => choose_moderators(&mut prompt, &account, g.id)?,
        None => Vec::new(),
    };

    // 3. The backend.
    println!("\nThe backend: your activation API (docs/backend-api.md).");
    let old = base.backend.as_ref();
    let old_url = old.and_then(|b| b.url.as_ref()).map(|u| u.expose().to_owned());
    let backend_url = loop {
        let url = match &old_url {
            Some(u) => ask_default(&mut prompt, "Backend base URL", u)?,
            None => prompt.ask("Backend base URL (e.g. https://api.example.com/tribute): ")?,
        };
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => break url,
            _ => eprintln!("That is not an http(s) URL."),
        }
    };
    let old_secret = old.and_then(|b| b.resolve(&env).ok()).map(|a| a.secret);
    let question = match old_secret {
        Some(_) => "HMAC secret shared with the backend (empty: keep the current one): ",
        None => "HMAC secret shared with the backend (empty: make a new one for the backend): ",
    };
    let typed = prompt.ask_secret(question)?;
    let secret = match (typed.is_empty(), old_secret) {
        (false, _) => SecretString::from(typed),
        (true, Some(s)) => s,
        (true, None) => {
            println!("A new secret is in {}: give your backend the same one.", secret_file.display());
            SecretString::from(format!("{:032x}{:032x}", fastrand::u128(..), fastrand::u128(..)))
        }
    };
    write_private(&secret_file, secret.expose_secret(), args.force)?;

    // 4. What customers type.
    let account_pattern = choose_pattern(&mut prompt)?;

    let answers = Answers {
        data_dir,
        api_id: api.api_id,
        api_hash_file,
        session_file: base.telegram.session_file.clone(),
        server: base.telegram.server.clone(),
        tribute_chat,
        moderator_chat,
        moderators,
        backend_url,
        secret_file,
        account_pattern,
    };
    let text = render_config(&answers);
    write_config(&output, &text, args.force)?;
    println!("\nWrote {} (the secrets are in 0600 files beside it).", output.display());

    // 5. The handshake, as `check` does it.
    let written = FileConfig::load(&output)?;
    let cfg = Config::resolve(written, env).context("The written config does not load")?;
    let line = backend_line(&cfg).await;
    let ok = line.status == Status::Pass;
    match line.status {
        Status::Pass => println!("✔ {}: {}", line.name, line.detail),
        _ => {
            println!("✘ {}: {}", line.name, line.detail);
            if let Some(fix) = &line.fix {
                println!("  → {fix}");
            }
        }
    }
    println!("\n{}", order_details_advice(answers.account_pattern.as_deref()));
    println!(
        "\nNext: `tribute-assistant --config {out} check`, then `tribute-assistant --config {out} run`.",
        out = output.display()
    );
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
}

fn ask_default(prompt: &mut Prompt, question: &str, default: &str) -> anyhow::Result<String> {
    let a = prompt.ask(&format!("{question} [{default}]: "))?;
    Ok(if a.is_empty() { default.to_owned() } else { a })
}

fn label(c: &ChatEntry) -> String {
    match &c.username {
        Some(u) => format!("{} (@{u}, id {})", c.name, c.id),
        None => format!("{} (id {})", c.name, c.id),
    }
}

fn choose_tribute(prompt: &mut Prompt, a: &AccountChats, configured: ChatId) -> anyhow::Result<ChatId> {
    match &a.tribute {
        Some(t) => {
            println!("The Tribute bot: {}.", label(t));
            let answer = ask_default(prompt, "Tribute bot's chat id", &t.id.to_string())?;
            answer.parse().with_context(|| format!("{answer:?} is not a chat id"))
        }
        None => {
            println!(
                "This account has no chat with the Tribute bot yet: open @tribute in Telegram with it and press Start. \
                 Using @tribute's id {configured} meanwhile."
            );
            Ok(configured)
        }
    }
}

/// Picks one of `items` by its number in the list or by its id.
fn pick<'a, T>(answer: &str, items: &'a [T], id: impl Fn(&T) -> i64) -> Option<&'a T> {
    let n: i64 = answer.trim().parse().ok()?;
    items.iter().find(|i| id(i) == n).or_else(|| usize::try_from(n).ok().and_then(|n| items.get(n.checked_sub(1)?)))
}

fn choose_group(prompt: &mut Prompt, a: &AccountChats) -> anyhow::Result<Option<ChatEntry>> {
    let groups: Vec<ChatEntry> = a.groups().cloned().collect();
    println!(
        "\nThe moderator group: cards about what the assistant cannot finish go there. This account must be a member \
         of it; only groups it is a member of are listed."
    );
    if groups.is_empty() {
        println!(
            "This account is in no group. Create one in Telegram, add this account and the moderators, then run \
             `init` again (or set [telegram] moderator_chat later; `chats` lists the ids)."
        );
        return Ok(None);
    }
    for (i, g) in groups.iter().enumerate() {
        println!("  {}) {}", i + 1, label(g));
    }
    loop {
        let answer = ask_default(prompt, "Moderator group (number or id)", "1")?;
        match pick(&answer, &groups, |g| g.id) {
            Some(g) => return Ok(Some(g.clone())),
            None => eprintln!("Choose one of the numbers or ids above."),
        }
    }
}

fn choose_moderators(prompt: &mut Prompt, a: &AccountChats, group: ChatId) -> anyhow::Result<Vec<(UserId, String)>> {
    let members: Vec<(UserId, String)> = a
        .groups
        .iter()
        .filter(|g| g.group.id == group)
        .flat_map(|g| g.members.iter())
        .filter(|m| m.id != a.self_id && !m.bot)
        .map(|m| (m.id, m.username.as_ref().map_or_else(|| m.name.clone(), |u| format!("{} (@{u})", m.name))))
        .collect();
    println!("\nModerators: the members whose replies and /commands the assistant obeys.");
    if members.is_empty() {
        println!(
            "The group has no other members yet; add user ids to [moderator] moderators later (`chats` lists them)."
        );
        return Ok(Vec::new());
    }
    for (i, (id, name)) in members.iter().enumerate() {
        println!("  {}) {name} (user id {id})", i + 1);
    }
    'ask: loop {
        let answer = ask_default(prompt, "Moderators (numbers or user ids, comma-separated)", "all")?;
        if answer.eq_ignore_ascii_case("all") {
            return Ok(members);
        }
        let mut chosen = Vec::new();
        for part in answer.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match pick(part, &members, |m| m.0) {
                Some(m) if !chosen.contains(m) => chosen.push(m.clone()),
                Some(_) => {}
                None => {
                    eprintln!("{part:?} is not one of the numbers or user ids above.");
                    continue 'ask;
                }
            }
        }
        if !chosen.is_empty() {
            return Ok(chosen);
        }
    }
}

/// The account ID format: the default (one run of 4–12 digits) or a
/// regex, checked against an example the publisher gives.
fn choose_pattern(prompt: &mut Prompt) -> anyhow::Result<Option<String>> {
    println!(
        "\nCustomers' account IDs: by default the assistant takes the one run of 4–12 digits a customer typed in \
         \"Order Details\"."
    );
    loop {
        let pattern = prompt.ask("Account ID pattern (empty: 4–12 digits; else a regex, group 1 is the ID): ")?;
        let (config, pattern) = if pattern.is_empty() {
            (ParserConfig::default(), None)
        } else {
            match ParserConfig::default().with_account_pattern(&pattern) {
                Ok(c) => (c, Some(pattern)),
                Err(e) => {
                    eprintln!("That pattern does not work: {e}");
                    continue;
                }
            }
        };
        let example = prompt.ask("One of your real account IDs, to check the pattern: ")?;
        match config.account_pattern.extract(&format!("My ID: {example}")) {
            AccountExtraction::Found(id) if id.as_str() == example => return Ok(pattern),
            AccountExtraction::Found(id) => {
                eprintln!("The pattern reads {id} out of \"My ID: {example}\", not {example}.")
            }
            AccountExtraction::Missing => eprintln!("The pattern finds no ID in \"My ID: {example}\"."),
            AccountExtraction::Ambiguous(_) => eprintln!("The pattern finds several IDs in \"My ID: {example}\"."),
        }
    }
}

/// What the Tribute product must ask for, so the order carries the ID.
pub fn order_details_advice(pattern: Option<&str>) -> String {
    let format = match pattern {
        None => "their account ID (4 to 12 digits)".to_owned(),
        Some(p) => format!("their account ID (the assistant reads it with the pattern {p})"),
    };
    format!(
        "In Tribute, make each custom product ask the customer for {format} in \"Order Details\", e.g.:\n\
         \x20   Order Details: \"Your account ID (e.g. 123456), and nothing else with digits\"\n\
         The assistant reads the ID from what the customer types there. No ID, or several different ones, and it \
         asks the customer in a private message; an ID your backend refuses goes back to the customer, then to a \
         moderator. Docs: docs/tribute-formats.md."
    )
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn render_config(a: &Answers) -> String {
    let path = |p: &Path| q(&p.display().to_string());
    let mut t = String::from(
        "# tribute-assistant config, written by `tribute-assistant init`.\n\
         # Secrets are never in this file: they are in the 0600 files it names (or the environment).\n\
         # The other settings and their defaults: README.md (Configuration) and docs/.\n\n",
    );
    t += &format!(
        "# The SQLite database, the Telegram session and the knowledge index live here.\ndata_dir = {}\n\n",
        path(&a.data_dir)
    );
    t += "[telegram]\n";
    t += &format!("# The Tribute bot's chat (@tribute).\ntribute_chat = {}\n", a.tribute_chat);
    match &a.moderator_chat {
        Some(g) => {
            t += &format!(
                "# The moderator group \"{}\": cards go there. This account must stay a member of it.\nmoderator_chat = {}\n",
                g.name.replace('\n', " "),
                g.id
            )
        }
        None => t += "# The moderator group (a group this account is a member of; `tribute-assistant chats` lists the ids).\n# moderator_chat = -100…\n",
    }
    t += &format!("# The application from https://my.telegram.org.\napi_id = {}\n", a.api_id);
    match &a.api_hash_file {
        Some(p) => {
            t += &format!(
                "# The api_hash (0600; or the environment variable {API_HASH_ENV}).\napi_hash_file = {}\n",
                path(p)
            )
        }
        None => t += &format!("# The api_hash comes from the environment variable {API_HASH_ENV}.\n"),
    }
    if let Some(p) = &a.session_file {
        t += &format!(
            "# The logged-in account's session (0600): whoever holds it is the account.\nsession_file = {}\n",
            path(p)
        );
    }
    if let Some(s) = &a.server {
        t += &format!("# Not Telegram's own servers: the testbed's (or a Telegram test server). Remove for production.\nserver = {}\n", q(s));
    }
    t += "\n[backend]\n";
    t += &format!(
        "# Your activation API: POST /activate and GET /health are appended (docs/backend-api.md).\nurl = {}\n",
        q(&a.backend_url)
    );
    t += &format!("# The HMAC secret the backend shares (0600).\nsecret_file = {}\n", path(&a.secret_file));
    t += "\n[moderator]\n# User ids whose replies and /commands in the moderator group are obeyed.\n";
    let names: Vec<&str> = a.moderators.iter().map(|(_, n)| n.as_str()).collect();
    if !names.is_empty() {
        t += &format!("# {}\n", names.join(", ").replace('\n', " "));
    }
    t += &format!(
        "moderators = [{}]\n",
        a.moderators.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>().join(", ")
    );
    t += "\n[parser]\n# How the account ID is read from \"Order Details\" (docs/tribute-formats.md).\n";
    match &a.account_pattern {
        Some(p) => t += &format!("account_pattern = {}\n", q(p)),
        None => t += "# Default: one run of 4–12 digits. A regex (group 1 is the ID) replaces it:\n# account_pattern = \"(?i)id[: ]*([a-z0-9]+)\"\n",
    }
    t
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, content: &str, replace: bool) -> anyhow::Result<()> {
    crate::private_file::write(path, content, replace)
        .with_context(|| format!("Failed to create {} (it may exist: --force replaces it)", path.display()))
}

fn write_config(path: &Path, text: &str, replace: bool) -> anyhow::Result<()> {
    if !replace && path.exists() {
        bail!("{} exists; pass --force to replace it", path.display());
    }
    std::fs::write(path, text).with_context(|| format!("Failed to write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Answers {
        Answers {
            data_dir: "/srv/ta/data".into(),
            api_id: 12345,
            api_hash_file: Some("/srv/ta/api_hash".into()),
            session_file: None,
            server: None,
            tribute_chat: 93372553,
            moderator_chat: Some(ChatEntry {
                id: -1000000000001,
                kind: crate::telegram::grammers::directory::ChatKind::Group,
                name: "Mods".into(),
                username: None,
            }),
            moderators: vec![(7001, "Masha".into()), (7002, "Petya".into())],
            backend_url: "https://api.example.com/tribute".into(),
            secret_file: "/srv/ta/backend.secret".into(),
            account_pattern: Some("(?i)acc-([a-z0-9]+)".into()),
        }
    }

    #[test]
    fn the_written_config_loads_with_every_answer() {
        let text = render_config(&answers());
        let file: FileConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(file.telegram.tribute_chat, 93372553);
        assert_eq!(file.telegram.moderator_chat, Some(-1000000000001));
        assert_eq!(file.telegram.api_id, Some(12345));
        assert_eq!(file.moderator.moderators, vec![7001, 7002]);
        assert_eq!(file.parser.account_pattern.as_deref(), Some("(?i)acc-([a-z0-9]+)"));
        assert!(file.parser.parser_config().is_ok());
        assert!(text.contains("# Masha, Petya"), "{text}");
        let none = Answers { moderator_chat: None, moderators: vec![], account_pattern: None, ..answers() };
        let file: FileConfig = toml::from_str(&render_config(&none)).unwrap();
        assert_eq!((file.telegram.moderator_chat, file.parser.account_pattern), (None, None));
    }

    #[test]
    fn picks_by_number_or_by_id() {
        let items = [(7001i64, "a"), (7002, "b")];
        assert_eq!(pick("2", &items, |i| i.0).map(|i| i.1), Some("b"));
        assert_eq!(pick("7001", &items, |i| i.0).map(|i| i.1), Some("a"));
        assert_eq!(pick("3", &items, |i| i.0), None);
        assert_eq!(pick("x", &items, |i| i.0), None);
    }
}

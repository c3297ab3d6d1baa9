//! `tribute-assistant chats`: the logged-in account's chats with the
//! numeric ids and kinds the config takes, the Tribute bot among them, and
//! the members of its groups (to choose the moderator chat and the
//! moderators). Read-only; needs a session from `login`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::app::config::FileConfig;
use crate::telegram::grammers::client::start_pool;
use crate::telegram::grammers::directory::{ChatEntry, ChatKind, Directory, Member};
use crate::telegram::grammers::session::{open_existing_session, point_at_server, stored_self_id};
use crate::telegram::{ChatId, TelegramApi, UserId};

/// Most dialogs read; an account dedicated to Tribute has a handful.
const MAX_CHATS: usize = 500;
/// Groups whose members are listed without `--group`.
const MAX_GROUPS: usize = 20;
/// Members listed per group.
const MAX_MEMBERS: usize = 100;
/// How long Telegram has to answer the whole listing.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, clap::Args)]
pub struct ChatsArgs {
    /// List the members of this group only (its id from the list).
    #[arg(long, allow_hyphen_values = true)]
    pub group: Option<ChatId>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A group and (some of) its members.
#[derive(Debug, Clone, Serialize)]
pub struct GroupMembers {
    pub group: ChatEntry,
    pub members: Vec<Member>,
    /// How many members the group has (more than listed when cut off).
    pub total: usize,
}

/// What the account sees.
#[derive(Debug, Clone, Serialize)]
pub struct AccountChats {
    pub self_id: UserId,
    pub self_name: String,
    pub chats: Vec<ChatEntry>,
    /// The Tribute bot's chat, if the account has one.
    pub tribute: Option<ChatEntry>,
    pub groups: Vec<GroupMembers>,
}

impl AccountChats {
    pub fn groups(&self) -> impl Iterator<Item = &ChatEntry> {
        self.chats.iter().filter(|c| c.kind == ChatKind::Group)
    }
}

pub async fn run(args: ChatsArgs, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let file = match config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let account = read(&file, args.group).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&account)?);
    } else {
        print!("{}", render(&account, file.telegram.tribute_chat));
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects with the session from `login` and reads the chats, and the
/// members of `group` (or of the first groups when `None`).
pub async fn read(file: &FileConfig, group: Option<ChatId>) -> anyhow::Result<AccountChats> {
    let env = |k: &str| std::env::var(k).ok();
    let path = file.session_path(&env);
    let server = file.telegram.server_addr()?;
    let api = TelegramApi::require(&file.telegram, &env)?;
    let Some(session) = open_existing_session(&path).await? else {
        bail!(
            "Not logged in: there is no Telegram session at {}. Run `tribute-assistant login` first.",
            path.display()
        );
    };
    if let Some(server) = server {
        point_at_server(&*session, server).await?;
    }
    let Some(self_id) = stored_self_id(&*session).await else {
        session.close().await;
        bail!(
            "Not logged in: the session at {} was never logged in. Run `tribute-assistant login` first.",
            path.display()
        );
    };
    let conn = start_pool(session.clone(), api.api_id, Duration::from_secs(5));
    let client = conn.client.clone();
    let read = tokio::time::timeout(READ_TIMEOUT, async move {
        let me = client.get_me().await?;
        let dir = Directory::read(&client, MAX_CHATS).await?;
        let wanted: Vec<ChatEntry> = match group {
            Some(id) => {
                vec![dir.get(id).filter(|c| c.kind == ChatKind::Group).cloned().ok_or(ReadError::Missing(id))?]
            }
            None => dir.groups().take(MAX_GROUPS).cloned().collect(),
        };
        let mut groups = Vec::new();
        for g in wanted {
            let (members, total) = dir.members(&client, g.id, MAX_MEMBERS).await?;
            groups.push(GroupMembers { group: g, members, total });
        }
        Ok::<_, ReadError>((me.full_name(), dir, groups))
    })
    .await;
    super::login::finish(conn, &session).await;
    let (self_name, dir, groups) = match read {
        Err(_) => bail!("Telegram did not answer within {}s", READ_TIMEOUT.as_secs()),
        Ok(Err(ReadError::Missing(id))) => {
            bail!("{id} is not one of this account's groups; `tribute-assistant chats` lists them")
        }
        Ok(Err(ReadError::Telegram(e))) => {
            return Err(anyhow::anyhow!(super::login::explain_login_error(&e))).context("Failed to read the chats")
        }
        Ok(Ok(r)) => r,
    };
    let tribute = dir.tribute_bot(file.telegram.tribute_chat).cloned();
    Ok(AccountChats { self_id, self_name, chats: dir.chats, tribute, groups })
}

enum ReadError {
    Missing(ChatId),
    Telegram(::grammers_client::InvocationError),
}

impl From<::grammers_client::InvocationError> for ReadError {
    fn from(e: ::grammers_client::InvocationError) -> Self {
        ReadError::Telegram(e)
    }
}

fn name(name: &str, username: Option<&str>) -> String {
    match username {
        Some(u) => format!("{name} (@{u})"),
        None => name.to_owned(),
    }
}

/// The plain-text listing.
pub fn render(a: &AccountChats, configured_tribute: ChatId) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Logged in as {}, user id {}.\n", a.self_name, a.self_id);
    let _ = writeln!(out, "Chats of this account (the ids are what the config takes):");
    let width = a.chats.iter().map(|c| c.id.to_string().len()).max().unwrap_or(2).max(2);
    let _ = writeln!(out, "  {:>width$}  {:<7}  name", "id", "kind");
    for c in &a.chats {
        let mark = if a.tribute.as_ref().is_some_and(|t| t.id == c.id) { "   ← the Tribute bot" } else { "" };
        let _ =
            writeln!(out, "  {:>width$}  {:<7}  {}{mark}", c.id, c.kind.label(), name(&c.name, c.username.as_deref()));
    }
    out.push('\n');
    match &a.tribute {
        Some(t) if t.id == configured_tribute => {
            let _ = writeln!(
                out,
                "Tribute bot: {} — [telegram] tribute_chat = {} (as configured).",
                name(&t.name, t.username.as_deref()),
                t.id
            );
        }
        Some(t) => {
            let _ = writeln!(
                out,
                "Tribute bot: {} — set [telegram] tribute_chat = {} (the config says {configured_tribute}).",
                name(&t.name, t.username.as_deref()),
                t.id
            );
        }
        None => {
            let _ = writeln!(out, "Tribute bot: not among this account's chats. Open @tribute in Telegram with this account and press Start.");
        }
    }
    out.push('\n');
    if a.groups.is_empty() {
        let _ = writeln!(out, "Groups: none. Create the moderator group in Telegram and add this account to it.");
    }
    for g in &a.groups {
        let _ = writeln!(out, "Members of the group {} ({}), for [moderator] moderators:", g.group.name, g.group.id);
        for m in &g.members {
            let who = if m.id == a.self_id {
                " (this account)"
            } else if m.bot {
                " (bot)"
            } else {
                ""
            };
            let _ = writeln!(out, "  {:>12}  {}{who}", m.id, name(&m.name, m.username.as_deref()));
        }
        if g.total > g.members.len() {
            let _ = writeln!(
                out,
                "  … and {} more (`chats --group {}` lists up to {MAX_MEMBERS})",
                g.total - g.members.len(),
                g.group.id
            );
        }
    }
    let listed = a.groups().count();
    if listed > a.groups.len() {
        let _ =
            writeln!(out, "({} more groups; `chats --group ID` lists one group's members.)", listed - a.groups.len());
    }
    let _ = writeln!(
        out,
        "\nThe moderator chat ([telegram] moderator_chat) must be a group this account is a member of: only those are \
         listed. If yours is missing, add this account to it in Telegram, then run `chats` again. Moderators \
         ([moderator] moderators) are the user ids of its members who may answer cards and use /commands."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_names_ids_kinds_the_bot_and_the_membership_rule() {
        let bot =
            ChatEntry { id: 93372553, kind: ChatKind::Bot, name: "Tribute".into(), username: Some("tribute".into()) };
        let group = ChatEntry { id: -1000000000001, kind: ChatKind::Group, name: "Moderators".into(), username: None };
        let a = AccountChats {
            self_id: 1000,
            self_name: "Shop".into(),
            chats: vec![bot.clone(), group.clone()],
            tribute: Some(bot),
            groups: vec![GroupMembers {
                group,
                members: vec![
                    Member { id: 1000, name: "Shop".into(), username: None, bot: false },
                    Member { id: 7001, name: "Masha".into(), username: Some("masha".into()), bot: false },
                ],
                total: 3,
            }],
        };
        let text = render(&a, 93372553);
        assert!(text.contains("93372553  bot      Tribute (@tribute)   ← the Tribute bot"), "{text}");
        assert!(text.contains("-1000000000001  group    Moderators"), "{text}");
        assert!(text.contains("1000  Shop (this account)"), "{text}");
        assert!(text.contains("… and 1 more"), "{text}");
        assert!(text.contains("must be a group this account is a member of"), "{text}");
        assert!(
            render(&a, 1).contains("set [telegram] tribute_chat = 93372553"),
            "a different configured id is corrected"
        );
    }
}

//! The account's chats and the members of its groups, in our own types:
//! what `chats` and `init` show so that the config's numeric ids
//! (`[telegram] tribute_chat`, `moderator_chat`, `[moderator] moderators`)
//! can be chosen rather than hunted for. Read-only.

use std::collections::HashMap;

use ::grammers_client::peer::Peer;
use ::grammers_client::Client;
use ::grammers_mtsender::InvocationError;
use ::grammers_session::types::PeerRef;

use crate::telegram::{ChatId, UserId};

/// What kind of chat a dialog is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    User,
    Bot,
    /// A group or supergroup: a moderator chat can be one.
    Group,
    /// A broadcast channel.
    Channel,
}

impl ChatKind {
    pub fn label(self) -> &'static str {
        match self {
            ChatKind::User => "user",
            ChatKind::Bot => "bot",
            ChatKind::Group => "group",
            ChatKind::Channel => "channel",
        }
    }
}

/// One chat of the account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChatEntry {
    /// The id the config takes (Bot API form: users positive, supergroups -100…).
    pub id: ChatId,
    pub kind: ChatKind,
    pub name: String,
    pub username: Option<String>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub id: UserId,
    pub name: String,
    pub username: Option<String>,
    pub bot: bool,
}

/// The account's chats, newest activity first, and how to reach them again.
pub struct Directory {
    pub chats: Vec<ChatEntry>,
    refs: HashMap<ChatId, PeerRef>,
}

fn entry(peer: &Peer, id: ChatId) -> ChatEntry {
    let (kind, name) = match peer {
        Peer::User(u) if u.is_bot() => (ChatKind::Bot, u.full_name()),
        Peer::User(u) => (ChatKind::User, u.full_name()),
        Peer::Group(g) => (ChatKind::Group, g.title().unwrap_or_default().to_owned()),
        Peer::Channel(c) => (ChatKind::Channel, c.title().to_owned()),
        Peer::Community(c) => (ChatKind::Group, c.title().to_owned()),
    };
    ChatEntry { id, kind, name, username: peer.username().map(str::to_owned) }
}

impl Directory {
    /// Reads every dialog of the account (at most `limit`).
    pub async fn read(client: &Client, limit: usize) -> Result<Self, InvocationError> {
        let mut dialogs = client.iter_dialogs();
        let (mut chats, mut refs) = (Vec::new(), HashMap::new());
        while let Some(d) = dialogs.next().await? {
            let Some(id) = d.peer_id().bot_api_dialog_id() else { continue };
            chats.push(entry(d.peer(), id));
            // Without a usable reference the chat is listed, its members are not.
            if let Ok(Some(r)) = d.peer().to_ref().await {
                refs.insert(id, r);
            }
            if chats.len() >= limit {
                break;
            }
        }
        Ok(Self { chats, refs })
    }

    /// The groups among the chats.
    pub fn groups(&self) -> impl Iterator<Item = &ChatEntry> {
        self.chats.iter().filter(|c| c.kind == ChatKind::Group)
    }

    pub fn get(&self, id: ChatId) -> Option<&ChatEntry> {
        self.chats.iter().find(|c| c.id == id)
    }

    /// The Tribute bot's chat: the configured id, else the bot @tribute.
    pub fn tribute_bot(&self, configured: ChatId) -> Option<&ChatEntry> {
        self.get(configured).filter(|c| c.kind == ChatKind::Bot).or_else(|| {
            self.chats.iter().find(|c| {
                c.kind == ChatKind::Bot && c.username.as_deref().is_some_and(|u| u.eq_ignore_ascii_case("tribute"))
            })
        })
    }

    /// Up to `limit` members of one of the account's groups, and how many it has.
    pub async fn members(
        &self,
        client: &Client,
        group: ChatId,
        limit: usize,
    ) -> Result<(Vec<Member>, usize), InvocationError> {
        let Some(peer) = self.refs.get(&group) else { return Ok((Vec::new(), 0)) };
        let mut iter = client.iter_participants(*peer);
        let mut members = Vec::new();
        while let Some(p) = iter.next().await? {
            let u = p.user;
            let Some(id) = u.id().bare_id() else { continue };
            members.push(Member {
                id,
                name: u.full_name(),
                username: u.username().map(str::to_owned),
                bot: u.is_bot(),
            });
            if members.len() >= limit {
                break;
            }
        }
        let total = iter.total().await.unwrap_or(members.len()).max(members.len());
        Ok((members, total))
    }
}

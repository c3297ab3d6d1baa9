//! [`FileSession`]: grammers' `Session` storage in a SQLite file through
//! sqlx (the crate's own SQLite). grammers-session's bundled
//! `SqliteSession` links a second copy of SQLite (libsql) whose symbols
//! clash with sqlx's at link time, so we store the same data ourselves:
//! home DC, DC options with their auth keys, the peer cache (access
//! hashes) and the update state. Every write goes to disk immediately.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use ::grammers_session::types::{
    ChannelKind, ChannelState, DcOption, PeerAuth, PeerId, PeerInfo, PeerKind, UpdateState, UpdatesState,
};
use ::grammers_session::{BoxFuture, Session, SessionData};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// The data centre used before Telegram tells us the account's home.
const DEFAULT_DC: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum FileSessionError {
    #[error("session database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("invalid address in the session: {0}")]
    Addr(#[from] std::net::AddrParseError),
    #[error("invalid auth key length {0} in the session")]
    AuthKey(usize),
    #[error("session lock poisoned")]
    Poisoned,
}

struct Cache {
    home_dc: i32,
    dc_options: HashMap<i32, DcOption>,
}

/// A persistent grammers session.
pub struct FileSession {
    pool: SqlitePool,
    cache: Mutex<Cache>,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS dc_home (id INTEGER PRIMARY KEY CHECK (id = 1), dc_id INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS dc_option (dc_id INTEGER PRIMARY KEY, ipv4 TEXT NOT NULL, ipv6 TEXT NOT NULL, auth_key BLOB)",
    "CREATE TABLE IF NOT EXISTS peer_info (peer_id INTEGER PRIMARY KEY, hash INTEGER, bot INTEGER, is_self INTEGER, channel_kind INTEGER)",
    "CREATE TABLE IF NOT EXISTS update_state (id INTEGER PRIMARY KEY CHECK (id = 1), pts INTEGER NOT NULL, qts INTEGER NOT NULL, date INTEGER NOT NULL, seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS channel_state (channel_id INTEGER PRIMARY KEY, pts INTEGER NOT NULL)",
];

fn kind_to_int(k: ChannelKind) -> i64 {
    match k {
        ChannelKind::Broadcast => 1,
        ChannelKind::Megagroup => 2,
        ChannelKind::Gigagroup => 3,
        ChannelKind::Community => 4,
    }
}

fn kind_from_int(k: i64) -> Option<ChannelKind> {
    Some(match k {
        1 => ChannelKind::Broadcast,
        2 => ChannelKind::Megagroup,
        3 => ChannelKind::Gigagroup,
        4 => ChannelKind::Community,
        _ => return None,
    })
}

fn bool_opt(v: Option<i64>) -> Option<bool> {
    v.map(|v| v != 0)
}

impl FileSession {
    /// Opens (creating if missing) the session database at `path`. The caller
    /// creates the file with restrictive permissions first; SQLite gives its
    /// journal files the same mode.
    pub async fn open(path: &Path) -> Result<Self, FileSessionError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(2).connect_with(options).await?;
        for stmt in SCHEMA {
            sqlx::query(stmt).execute(&pool).await?;
        }
        let home_dc = sqlx::query("SELECT dc_id FROM dc_home WHERE id = 1")
            .fetch_optional(&pool)
            .await?
            .map(|r| r.get::<i64, _>(0) as i32)
            .unwrap_or(DEFAULT_DC);
        let mut dc_options = SessionData::default().dc_options;
        for row in sqlx::query("SELECT dc_id, ipv4, ipv6, auth_key FROM dc_option").fetch_all(&pool).await? {
            let auth_key = match row.get::<Option<Vec<u8>>, _>(3) {
                None => None,
                Some(k) => Some(<[u8; 256]>::try_from(k.as_slice()).map_err(|_| FileSessionError::AuthKey(k.len()))?),
            };
            let opt = DcOption {
                id: row.get::<i64, _>(0) as i32,
                ipv4: row.get::<String, _>(1).parse()?,
                ipv6: row.get::<String, _>(2).parse()?,
                auth_key,
            };
            dc_options.insert(opt.id, opt);
        }
        Ok(Self { pool, cache: Mutex::new(Cache { home_dc, dc_options }) })
    }

    /// Closes the database (flushes the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn load_peer(&self, peer: PeerId) -> Result<Option<PeerInfo>, FileSessionError> {
        let row = match peer.bot_api_dialog_id() {
            Some(id) => {
                sqlx::query("SELECT peer_id, hash, bot, is_self, channel_kind FROM peer_info WHERE peer_id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT peer_id, hash, bot, is_self, channel_kind FROM peer_info WHERE is_self = 1 LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let stored = PeerId::from_bot_api_dialog_id(row.get::<i64, _>(0));
        let Some(stored) = stored else { return Ok(None) };
        let auth = row.get::<Option<i64>, _>(1).map(PeerAuth::from_hash);
        let bare = stored.bare_id().unwrap_or_default();
        Ok(Some(match stored.kind() {
            PeerKind::User => {
                PeerInfo::User { id: bare, auth, bot: bool_opt(row.get(2)), is_self: bool_opt(row.get(3)) }
            }
            PeerKind::Chat => PeerInfo::Chat { id: bare },
            PeerKind::Channel => {
                PeerInfo::Channel { id: bare, auth, kind: row.get::<Option<i64>, _>(4).and_then(kind_from_int) }
            }
        }))
    }

    async fn store_peer(&self, peer: PeerInfo) -> Result<(), FileSessionError> {
        let merged = match self.load_peer(peer.id()).await? {
            Some(mut existing) => {
                existing.extend_info(&peer);
                existing
            }
            None => peer,
        };
        let Some(id) = merged.id().bot_api_dialog_id() else { return Ok(()) };
        let (bot, is_self, kind) = match &merged {
            PeerInfo::User { bot, is_self, .. } => (bot.map(i64::from), is_self.map(i64::from), None),
            PeerInfo::Chat { .. } => (None, None, None),
            PeerInfo::Channel { kind, .. } => (None, None, kind.map(kind_to_int)),
        };
        sqlx::query(
            "INSERT OR REPLACE INTO peer_info (peer_id, hash, bot, is_self, channel_kind) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(merged.auth().map(|a| a.hash()))
        .bind(bot)
        .bind(is_self)
        .bind(kind)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Session for FileSession {
    type Error = FileSessionError;

    fn home_dc_id(&self) -> Result<i32, FileSessionError> {
        Ok(self.cache.lock().map_err(|_| FileSessionError::Poisoned)?.home_dc)
    }

    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, Result<(), FileSessionError>> {
        Box::pin(async move {
            self.cache.lock().map_err(|_| FileSessionError::Poisoned)?.home_dc = dc_id;
            sqlx::query("INSERT OR REPLACE INTO dc_home (id, dc_id) VALUES (1, ?)")
                .bind(i64::from(dc_id))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, FileSessionError> {
        Ok(self.cache.lock().map_err(|_| FileSessionError::Poisoned)?.dc_options.get(&dc_id).cloned())
    }

    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), FileSessionError>> {
        let dc_option = dc_option.clone();
        Box::pin(async move {
            self.cache
                .lock()
                .map_err(|_| FileSessionError::Poisoned)?
                .dc_options
                .insert(dc_option.id, dc_option.clone());
            sqlx::query("INSERT OR REPLACE INTO dc_option (dc_id, ipv4, ipv6, auth_key) VALUES (?, ?, ?, ?)")
                .bind(i64::from(dc_option.id))
                .bind(dc_option.ipv4.to_string())
                .bind(dc_option.ipv6.to_string())
                .bind(dc_option.auth_key.map(|k| k.to_vec()))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, FileSessionError>> {
        Box::pin(self.load_peer(peer))
    }

    fn cache_peer(&self, peer: PeerInfo) -> BoxFuture<'_, Result<(), FileSessionError>> {
        Box::pin(self.store_peer(peer))
    }

    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, FileSessionError>> {
        Box::pin(async move {
            let mut state = sqlx::query("SELECT pts, qts, date, seq FROM update_state WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .map(|r| UpdatesState {
                    pts: r.get::<i64, _>(0) as i32,
                    qts: r.get::<i64, _>(1) as i32,
                    date: r.get::<i64, _>(2) as i32,
                    seq: r.get::<i64, _>(3) as i32,
                    channels: Vec::new(),
                })
                .unwrap_or_default();
            state.channels = sqlx::query("SELECT channel_id, pts FROM channel_state")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| ChannelState { id: r.get(0), pts: r.get::<i64, _>(1) as i32 })
                .collect();
            Ok(state)
        })
    }

    fn set_update_state(&self, update: UpdateState) -> BoxFuture<'_, Result<(), FileSessionError>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            match update {
                UpdateState::All(s) => {
                    sqlx::query("INSERT OR REPLACE INTO update_state (id, pts, qts, date, seq) VALUES (1, ?, ?, ?, ?)")
                        .bind(s.pts)
                        .bind(s.qts)
                        .bind(s.date)
                        .bind(s.seq)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM channel_state").execute(&mut *tx).await?;
                    for c in s.channels {
                        sqlx::query("INSERT INTO channel_state (channel_id, pts) VALUES (?, ?)")
                            .bind(c.id)
                            .bind(c.pts)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                UpdateState::Primary { pts, date, seq } => {
                    sqlx::query(
                        "INSERT INTO update_state (id, pts, qts, date, seq) VALUES (1, ?, 0, ?, ?)
                         ON CONFLICT (id) DO UPDATE SET pts = excluded.pts, date = excluded.date, seq = excluded.seq",
                    )
                    .bind(pts)
                    .bind(date)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                }
                UpdateState::Secondary { qts } => {
                    sqlx::query(
                        "INSERT INTO update_state (id, pts, qts, date, seq) VALUES (1, 0, ?, 0, 0)
                         ON CONFLICT (id) DO UPDATE SET qts = excluded.qts",
                    )
                    .bind(qts)
                    .execute(&mut *tx)
                    .await?;
                }
                UpdateState::Channel { id, pts } => {
                    sqlx::query("INSERT OR REPLACE INTO channel_state (channel_id, pts) VALUES (?, ?)")
                        .bind(id)
                        .bind(pts)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};

    #[tokio::test]
    async fn everything_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.session");
        let s = FileSession::open(&path).await.unwrap();
        assert_eq!(s.home_dc_id().unwrap(), DEFAULT_DC);
        assert!(s.dc_option(2).unwrap().is_some(), "known DCs are there from the start");
        s.set_home_dc_id(4).await.unwrap();
        let ipv4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4433);
        let local = DcOption {
            id: 4,
            ipv4,
            ipv6: SocketAddrV6::new(ipv4.ip().to_ipv6_mapped(), 4433, 0, 0),
            auth_key: Some([7; 256]),
        };
        s.set_dc_option(&local).await.unwrap();
        s.cache_peer(PeerInfo::User {
            id: 777,
            auth: Some(PeerAuth::from_hash(1)),
            bot: Some(false),
            is_self: Some(true),
        })
        .await
        .unwrap();
        s.cache_peer(PeerInfo::User {
            id: 93372553,
            auth: Some(PeerAuth::from_hash(99)),
            bot: Some(true),
            is_self: None,
        })
        .await
        .unwrap();
        // A later sighting without a hash does not lose the hash.
        s.cache_peer(PeerInfo::User { id: 93372553, auth: None, bot: Some(true), is_self: None }).await.unwrap();
        s.cache_peer(PeerInfo::Channel {
            id: 8,
            auth: Some(PeerAuth::from_hash(5)),
            kind: Some(ChannelKind::Megagroup),
        })
        .await
        .unwrap();
        s.set_update_state(UpdateState::Primary { pts: 10, date: 20, seq: 3 }).await.unwrap();
        s.set_update_state(UpdateState::Secondary { qts: 4 }).await.unwrap();
        s.set_update_state(UpdateState::Channel { id: 8, pts: 50 }).await.unwrap();
        s.close().await;

        let s = FileSession::open(&path).await.unwrap();
        assert_eq!(s.home_dc_id().unwrap(), 4);
        assert_eq!(s.dc_option(4).unwrap(), Some(local));
        match s.peer(PeerId::self_user()).await.unwrap() {
            Some(PeerInfo::User { id: 777, is_self: Some(true), .. }) => {}
            other => panic!("self user: {other:?}"),
        }
        let bot = s.peer_ref(PeerId::user(93372553).unwrap()).await.unwrap().unwrap();
        assert_eq!(bot.auth.hash(), 99);
        let ch = s.peer(PeerId::channel(8).unwrap()).await.unwrap();
        assert!(matches!(ch, Some(PeerInfo::Channel { id: 8, kind: Some(ChannelKind::Megagroup), .. })), "{ch:?}");
        assert!(s.peer(PeerId::user(1234).unwrap()).await.unwrap().is_none());
        let st = s.updates_state().await.unwrap();
        assert_eq!((st.pts, st.qts, st.date, st.seq), (10, 4, 20, 3));
        assert_eq!(st.channels, vec![ChannelState { id: 8, pts: 50 }]);
    }
}

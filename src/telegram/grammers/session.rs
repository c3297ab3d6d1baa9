//! The Telegram session file: the account's authorisation key, the peer
//! cache (access hashes) and the update state. Whoever holds this file
//! *is* the account, so it is created with mode 0600 and tightened to
//! 0600 when found wider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::net::{SocketAddrV4, SocketAddrV6};

use ::grammers_session::types::{DcOption, PeerId, PeerInfo};
use anyhow::Context;

use super::session_store::FileSession;

/// The session file's name inside the data dir.
pub const SESSION_FILE: &str = "telegram.session";

/// Where the session lives for a data dir.
pub fn session_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SESSION_FILE)
}

/// Creates the file (and its directory) if needed, with mode 0600, and
/// tightens an existing file's mode to 0600. Returns true if the file was created.
pub fn ensure_private_file(path: &Path) -> anyhow::Result<bool> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).with_context(|| format!("Failed to create {}", dir.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                // Only a directory we create ourselves is tightened; an existing one is the operator's.
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("Failed to restrict {}", dir.display()))?;
            }
        }
    }
    let created = !path.exists();
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).with_context(|| format!("Failed to create the session file {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            if !created {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the session file was readable by others; restricting it to 0600");
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("Failed to restrict {} to 0600", path.display()))?;
        }
    }
    Ok(created)
}

/// Opens (creating if needed, 0600) the session at `path`.
pub async fn open_session(path: &Path) -> anyhow::Result<Arc<FileSession>> {
    ensure_private_file(path)?;
    let session = FileSession::open(path)
        .await
        .with_context(|| format!("Failed to open the Telegram session {}", path.display()))?;
    Ok(Arc::new(session))
}

/// Opens an existing session; `Ok(None)` when there is no file (never logged in).
pub async fn open_existing_session(path: &Path) -> anyhow::Result<Option<Arc<FileSession>>> {
    if !path.exists() {
        return Ok(None);
    }
    open_session(path).await.map(Some)
}

/// Points the session's home data centre at `server` (`[telegram]
/// server`): the testbed's MTProto server or one of Telegram's test
/// servers. A transport key the session holds for another address is
/// dropped, so it is never sent to this one (a new key is then made with
/// the server, or, for the testbed, its session file already holds one for
/// this address).
pub async fn point_at_server<S: ::grammers_session::Session + ?Sized>(
    session: &S,
    server: SocketAddrV4,
) -> anyhow::Result<()>
where
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let home = session.home_dc_id()?;
    let current = session.dc_option(home)?;
    if current.as_ref().is_some_and(|o| o.ipv4 == server) {
        return Ok(());
    }
    if current.as_ref().is_some_and(|o| o.auth_key.is_some()) {
        tracing::info!(%server, "the session's key was made with another server; a new one is made");
    }
    let option = DcOption {
        id: home,
        ipv4: server,
        ipv6: SocketAddrV6::new(server.ip().to_ipv6_mapped(), server.port(), 0, 0),
        auth_key: None,
    };
    session.set_dc_option(&option).await.context("Failed to point the session at [telegram] server")?;
    Ok(())
}

/// Opens (creating if needed, 0600) the session at `path`, pointed at
/// `server` when one is configured.
pub async fn open_session_at(path: &Path, server: Option<SocketAddrV4>) -> anyhow::Result<Arc<FileSession>> {
    let session = open_session(path).await?;
    if let Some(server) = server {
        point_at_server(&*session, server).await?;
    }
    Ok(session)
}

/// The logged-in user's id as recorded in the session at sign-in, without
/// touching the network. `None` means the session was never authorised.
pub async fn stored_self_id<S: ::grammers_session::Session + ?Sized>(session: &S) -> Option<i64>
where
    S::Error: std::fmt::Debug,
{
    match session.peer(PeerId::self_user()).await {
        Ok(Some(PeerInfo::User { id, .. })) => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn session_file_is_created_0600_and_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = session_path(&dir.path().join("data"));
        let session = open_session(&path).await.unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(stored_self_id(&*session).await, None, "a fresh session is not logged in");
        drop(session);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _again = open_existing_session(&path).await.unwrap().expect("exists");
        assert_eq!(mode(&path), 0o600);
    }

    #[tokio::test]
    async fn a_configured_server_replaces_the_address_and_drops_a_key_made_elsewhere() {
        use ::grammers_session::Session;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.session");
        let here: SocketAddrV4 = "127.0.0.1:4430".parse().unwrap();
        let session = open_session_at(&path, Some(here)).await.unwrap();
        let home = session.home_dc_id().unwrap();
        let option = session.dc_option(home).unwrap().unwrap();
        assert_eq!((option.ipv4, option.auth_key), (here, None));
        // A key made with this server stays.
        session.set_dc_option(&DcOption { auth_key: Some([7; 256]), ..option }).await.unwrap();
        point_at_server(&*session, here).await.unwrap();
        assert_eq!(session.dc_option(home).unwrap().unwrap().auth_key, Some([7; 256]));
        session.close().await;
        drop(session);
        // Another server: the key is never offered to it, and that is on disk.
        let there: SocketAddrV4 = "127.0.0.1:4431".parse().unwrap();
        let session = open_session_at(&path, Some(there)).await.unwrap();
        session.close().await;
        drop(session);
        let session = open_session(&path).await.unwrap();
        let option = session.dc_option(home).unwrap().unwrap();
        assert_eq!((option.ipv4, option.auth_key), (there, None));
    }

    #[tokio::test]
    async fn missing_session_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open_existing_session(&dir.path().join("nope.session")).await.unwrap().is_none());
        assert!(!dir.path().join("nope.session").exists());
    }
}

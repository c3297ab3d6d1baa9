//! The Telegram session file: the account's authorisation key, the peer
//! cache (access hashes) and the update state. Whoever holds this file
//! *is* the account, so it is created with mode 0600 and tightened to
//! 0600 when found wider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::grammers_session::types::{PeerId, PeerInfo};
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
    async fn missing_session_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open_existing_session(&dir.path().join("nope.session")).await.unwrap().is_none());
        assert!(!dir.path().join("nope.session").exists());
    }
}

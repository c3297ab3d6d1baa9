//! The `--output` file: private, and never written through a symbolic link.
//!
//! An export is a copy of customer conversations (personal data with
//! `--no-redact`), so it is created `0600` whatever the umask, and an
//! existing file it replaces is tightened to `0600` too. A symlink at the
//! output path (planted in a shared directory, or left over) would send
//! the export wherever it points, so it is refused; `O_NOFOLLOW` makes
//! that check part of the open itself rather than a separate look first.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Why the output file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("refusing to write the export through the symbolic link {0}: give the path of a regular file")]
    Symlink(PathBuf),
    #[error("cannot create {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Creates (or truncates) `path` for writing, owner-only, refusing a symlink.
/// Devices and pipes (`/dev/null`, a FIFO) are written to but left as they are.
pub fn create_private(path: &Path) -> Result<File, OutputError> {
    let io = |source| OutputError::Io { path: path.to_owned(), source };
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(OutputError::Symlink(path.to_owned()));
    }
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(path).map_err(|e| {
        // A symlink that appeared after the look above.
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return OutputError::Symlink(path.to_owned());
        }
        io(e)
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // `mode` applies only to a new file; an old one keeps its bits unless tightened.
        if file.metadata().map_err(io)?.is_file() {
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(file)
}

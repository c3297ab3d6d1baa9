//! Files that hold a secret (the backend's HMAC secret, an API hash, a key)
//! are created readable by their owner only, from the first byte: written
//! first and `chmod`ed after, they would be readable by anyone for a moment.

use std::io::Write as _;
use std::path::Path;

/// Writes `content` to a new file at `path` with mode 0600. `replace`
/// removes a file already there; without it an existing file is an error
/// (`AlreadyExists`), so a secret is never overwritten by accident.
pub fn write(path: &Path, content: &str, replace: bool) -> std::io::Result<()> {
    if replace {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(content.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_secret_file_is_private_and_replaced_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        super::write(&path, "one", false).unwrap();
        let err = super::write(&path, "two", false).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        super::write(&path, "three", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}

//! Writing a sink's file so that readers never see half of it.
//!
//! The content goes to a temporary file beside the target, is synced, and is renamed over the
//! target: a dashboard open in a browser or a cron job copying the file sees the old version or
//! the new one, never a mix.

use std::io::Write;
use std::path::Path;

use crate::SinkError;

/// Replaces `path` with `content` atomically, creating its folder if needed. The file gets mode
/// 0644 on Unix: a report is meant to be read like any other file.
pub fn write_atomically(path: &Path, content: &[u8]) -> Result<(), SinkError> {
    let io = |source| SinkError::Io { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".mailflow-");
    // Temporary files are private (0600) otherwise.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut file = builder.tempfile_in(dir).map_err(io)?;
    file.write_all(content).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// A component or job name as one file name: letters, digits, `-` and `_` stay, every other byte
/// becomes `%XX`. Distinct names stay distinct, and no name can climb out of a folder.
pub fn file_name_for(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_distinct_safe_file_names() {
        assert_eq!(file_name_for("weekly digest"), "weekly%20digest");
        assert_eq!(file_name_for("weekly_digest"), "weekly_digest");
        assert_eq!(file_name_for(".."), "%2E%2E");
        assert_eq!(file_name_for("a/b"), "a%2Fb");
        assert_eq!(file_name_for("mx-1"), "mx-1");
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/report.txt");
        write_atomically(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        }
    }

    #[test]
    fn names_the_path_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let err = write_atomically(&blocker.join("report.txt"), b"x").unwrap_err();
        assert!(err.to_string().contains("file/report.txt"), "{err}");
    }
}

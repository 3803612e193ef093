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

#[cfg(test)]
mod tests {
    use super::*;

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

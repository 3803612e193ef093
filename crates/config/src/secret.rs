use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// A password or token. Its `Debug` and `Display` never show the value.
///
/// In a config file a secret is given inline through the environment (`password = "${SMTP_PASSWORD}"`)
/// or as a file (`password_file = "/run/secrets/smtp"`), never as a literal an admin might commit.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Reads a secret file; one trailing newline (as editors and `echo` leave it) is dropped.
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        let mut value = std::fs::read_to_string(path)?;
        if value.ends_with('\n') {
            value.pop();
            if value.ends_with('\r') {
                value.pop();
            }
        }
        Ok(Secret(value))
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed_and_read_from_files_without_the_newline() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "hunter2\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), "hunter2");
    }
}

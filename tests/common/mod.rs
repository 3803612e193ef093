//! What the end-to-end tests share: running the built binary.

use std::process::{Command, Output};

/// Runs `mailflow` with `args`, without the caller's `RUST_LOG`, and waits for it.
pub fn mailflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailflow")).args(args).env_remove("RUST_LOG").output().unwrap()
}

/// Output bytes as text, for messages and assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

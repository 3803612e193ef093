//! The program's standard error: every line goes to mailflow's log, the last few into the
//! message of a failed run.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Mutex;

use crate::stdout::each_line;

/// How many of the last lines of standard error a failure message quotes.
pub const TAIL_LINES: usize = 5;
/// Longer lines are logged cut to this many bytes.
const LOG_LINE_BYTES: usize = 4096;
/// Longer lines are quoted cut to this many characters.
const TAIL_LINE_CHARS: usize = 200;

/// The last [`TAIL_LINES`] lines that were not blank.
#[derive(Debug, Default)]
pub struct Tail(Mutex<VecDeque<String>>);

impl Tail {
    fn push(&self, line: &str) {
        let mut lines = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        let mut quoted: String = line.chars().take(TAIL_LINE_CHARS).collect();
        if quoted.len() < line.len() {
            quoted.push('…');
        }
        lines.push_back(quoted);
    }

    /// `; last lines on stderr: "…" | "…"`, or nothing when the program wrote none.
    pub fn quoted(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.is_empty() {
            return String::new();
        }
        let quoted: Vec<String> = lines.iter().map(|l| format!("{l:?}")).collect();
        format!("; last lines on stderr: {}", quoted.join(" | "))
    }
}

/// Logs every line of `stderr` until it ends, keeping the last ones in `tail`.
pub fn forward(stderr: impl Read, label: &str, source: &str, tail: &Tail) {
    // A read error ends standard error only; the run goes on.
    let _ = each_line(stderr, LOG_LINE_BYTES, |text, len| {
        let line = String::from_utf8_lossy(text);
        let line = line.trim_end();
        if line.trim_start().is_empty() {
            return true;
        }
        let cut = if len > LOG_LINE_BYTES { "…" } else { "" };
        let (level, message) = level_of(line);
        match level {
            Level::Error => tracing::error!(source, program = label, "{message}{cut}"),
            Level::Warn => tracing::warn!(source, program = label, "{message}{cut}"),
            Level::Info => tracing::info!(source, program = label, "{message}{cut}"),
            Level::Debug => tracing::debug!(source, program = label, "{message}{cut}"),
            Level::Trace => tracing::trace!(source, program = label, "{message}{cut}"),
        }
        tail.push(line);
        true
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// The level a line asks for, and the line without it: `ERROR`, `WARN`, `WARNING`, `INFO`,
/// `DEBUG` or `TRACE` at its start, alone or in brackets, followed by `:`, a space or nothing
/// (`WARN: disk almost full`, `[ERROR] cannot open x`). Other lines are `Info`, as written.
pub fn level_of(line: &str) -> (Level, &str) {
    const WORDS: [(&str, Level); 6] = [
        ("ERROR", Level::Error),
        ("WARNING", Level::Warn),
        ("WARN", Level::Warn),
        ("INFO", Level::Info),
        ("DEBUG", Level::Debug),
        ("TRACE", Level::Trace),
    ];
    let start = line.trim_start();
    let (bracketed, text) = match start.strip_prefix('[') {
        Some(rest) => (true, rest),
        None => (false, start),
    };
    for (word, level) in WORDS {
        let Some(rest) = text.strip_prefix(word) else { continue };
        let rest = if bracketed {
            match rest.strip_prefix(']') {
                Some(rest) => rest,
                None => continue,
            }
        } else {
            rest
        };
        if !(rest.is_empty() || rest.starts_with([':', ' ', '\t'])) {
            continue;
        }
        let message = rest.strip_prefix(':').unwrap_or(rest).trim_start();
        return (level, if message.is_empty() { line } else { message });
    }
    (Level::Info, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_come_from_the_first_word() {
        assert_eq!(level_of("ERROR: cannot open x"), (Level::Error, "cannot open x"));
        assert_eq!(level_of("WARN disk almost full"), (Level::Warn, "disk almost full"));
        assert_eq!(level_of("WARNING:root:slow"), (Level::Warn, "root:slow"));
        assert_eq!(level_of("[DEBUG] page 2"), (Level::Debug, "page 2"));
        assert_eq!(level_of("  TRACE\tx"), (Level::Trace, "x"));
        assert_eq!(level_of("INFO"), (Level::Info, "INFO"));
        assert_eq!(level_of("ERRORS are counted"), (Level::Info, "ERRORS are counted"));
        assert_eq!(level_of("[ERROR cannot"), (Level::Info, "[ERROR cannot"));
        assert_eq!(level_of("error: lower case is text"), (Level::Info, "error: lower case is text"));
        assert_eq!(level_of("Traceback (most recent call last):"), (Level::Info, "Traceback (most recent call last):"));
    }

    #[test]
    fn the_tail_keeps_the_last_lines_cut_and_quoted() {
        let tail = Tail::default();
        assert_eq!(tail.quoted(), "");
        for i in 0..7 {
            tail.push(&format!("line {i}"));
        }
        tail.push(&"x".repeat(300));
        tail.push("say \"hi\"");
        let quoted = tail.quoted();
        assert!(quoted.starts_with("; last lines on stderr: \"line 4\" | \"line 5\" | \"line 6\" | \"xxx"), "{quoted}");
        assert!(quoted.ends_with(&format!("{}…\" | \"say \\\"hi\\\"\"", "x".repeat(10))), "{quoted}");
    }
}

//! The program's standard output: lines as they arrive, the protocol line, events, the
//! program's own skips.
//!
//! `mailflow_component::input::for_each_line` reads files a megabyte block at a time, which
//! would hold a pipe's first lines back until a megabyte or the end arrived; a program's
//! output is read here as it comes, so a refused protocol stops the program at once.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::SyncSender;

use mailflow_collector_events::{Record, decode_line, with_evidence};
use mailflow_core::MessageEvent;
use serde::Deserialize;

/// The protocol versions this collector speaks.
pub const PROTOCOL: u64 = 1;

/// What the threads watching the program tell the collecting thread.
#[derive(Debug)]
pub enum Msg {
    Event(Box<MessageEvent>),
    /// A line that is not an event, by its 1-based number.
    Skip {
        line: u64,
        why: String,
    },
    /// The program skipped a record of its own input (`{"mailflow_skip":{"at":…,"why":…}}`):
    /// counted as a skipped line, at the place it names.
    Skipped {
        at: String,
        why: String,
    },
    /// The program announced a protocol this collector does not speak; nothing more is read.
    Refused(String),
    /// Standard output ended, or could not be read further.
    Closed(std::io::Result<()>),
    /// The program exited (it is not reaped yet).
    Exited,
}

/// Calls `visit(text, len)` with each line of `reader` as soon as it is complete: `text` is
/// the line without its `\n` or `\r\n`, cut to `max` bytes; `len` is its full length, so a
/// line is over the limit when `len > max`. At most `max + 1` bytes of a line are held.
/// `visit` returns `false` to stop reading.
pub fn each_line(reader: impl Read, max: usize, mut visit: impl FnMut(&[u8], usize) -> bool) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut carry: Vec<u8> = Vec::new();
    // The true length of the partial line in `carry`.
    let mut carry_len = 0usize;
    let mut emit = |line: &[u8], len: usize| {
        let whole = len == line.len();
        let text = if whole { line.strip_suffix(b"\r").unwrap_or(line) } else { line };
        let len = len - (line.len() - text.len());
        visit(&text[..text.len().min(max)], len)
    };
    loop {
        let block = match reader.fill_buf() {
            Ok(block) => block,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if block.is_empty() {
            if carry_len > 0 {
                emit(&carry, carry_len);
            }
            return Ok(());
        }
        let (taken, go_on) = match memchr::memchr(b'\n', block) {
            Some(i) if carry_len == 0 => (i + 1, emit(&block[..i], i)),
            Some(i) => {
                let room = (max + 1).saturating_sub(carry.len());
                carry.extend_from_slice(&block[..i.min(room)]);
                let go_on = emit(&carry, carry_len + i);
                carry.clear();
                carry_len = 0;
                (i + 1, go_on)
            }
            None => {
                let room = (max + 1).saturating_sub(carry.len());
                carry.extend_from_slice(&block[..block.len().min(room)]);
                carry_len += block.len();
                (block.len(), true)
            }
        };
        reader.consume(taken);
        if !go_on {
            return Ok(());
        }
    }
}

/// Reads the program's output to its end (or until the receiver is gone), sending an event, the
/// program's own skip or a skip of the line for every line that is not blank, then
/// [`Msg::Closed`].
pub fn read(output: impl Read, label: &str, max_line_bytes: usize, tx: &SyncSender<Msg>) {
    let evidence_file = format!("{label} stdout");
    let mut number = 0u64;
    let mut first = true;
    let result = each_line(output, max_line_bytes, |text, len| {
        number += 1;
        // Some runtimes (PowerShell, .NET) start UTF-8 output with a byte-order mark.
        let text = if number == 1 { text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text) } else { text };
        let msg = if len > max_line_bytes {
            first = false;
            Msg::Skip { line: number, why: format!("line of {len} bytes is over max_line_bytes ({max_line_bytes})") }
        } else if text.iter().all(u8::is_ascii_whitespace) {
            return true;
        } else if std::mem::take(&mut first)
            && let Some(version) = announced(text)
        {
            if version.as_u64() == Some(PROTOCOL) {
                return true;
            }
            let mut shown = version.to_string();
            if shown.len() > 64 {
                shown = format!("{}…", shown.chars().take(60).collect::<String>());
            }
            let why = format!("{label} announces protocol {shown}; this mailflow speaks protocol {PROTOCOL}");
            let _ = tx.send(Msg::Refused(why));
            return false;
        } else {
            match decode_line(text) {
                Ok(Record::Event(event)) => Msg::Event(Box::new(with_evidence(event, &evidence_file, number))),
                // The program's place (`export.csv:17`) as it gave it; without one, this line's.
                Ok(Record::Skipped { at, why }) if at.trim().is_empty() => Msg::Skip { line: number, why },
                Ok(Record::Skipped { at, why }) => Msg::Skipped { at, why },
                Err(_) if announced(text).is_some() => {
                    Msg::Skip { line: number, why: "a protocol announcement must be the first line of output".into() }
                }
                Err(why) => Msg::Skip { line: number, why },
            }
        };
        tx.send(msg).is_ok()
    });
    let _ = tx.send(Msg::Closed(result));
}

/// The version a protocol line (`{"mailflow_protocol":1}`) announces, if `text` is one.
/// Other keys are allowed beside it, for a program that also names itself.
fn announced(text: &[u8]) -> Option<serde_json::Value> {
    #[derive(Deserialize)]
    struct Announcement {
        mailflow_protocol: serde_json::Value,
    }
    serde_json::from_slice::<Announcement>(text).ok().map(|a| a.mailflow_protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<String> {
        let mut got = Vec::new();
        each_line(input, max, |text, len| {
            let text = String::from_utf8_lossy(text);
            got.push(if len > max { format!("<{len}:{text}>") } else { text.into_owned() });
            true
        })
        .unwrap();
        got
    }

    #[test]
    fn lines_are_cut_at_the_limit_without_losing_the_next() {
        assert_eq!(
            lines(b"short\r\nthis line is too long\nok\n\nlast", 8),
            ["short", "<21:this lin>", "ok", "", "last"]
        );
        assert_eq!(lines(b"12345678\r\n", 8), ["12345678"]);
        assert!(lines(b"", 8).is_empty());
    }

    #[test]
    fn lines_straddle_reads() {
        /// Hands out a few bytes per read, as a pipe may.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut got = Vec::new();
        each_line(Trickle(b"abcdefgh\r\nijklmnopqrstu\nvw"), 10, |text, len| {
            got.push((String::from_utf8_lossy(text).into_owned(), len));
            true
        })
        .unwrap();
        assert_eq!(got, [("abcdefgh".into(), 8), ("ijklmnopqr".into(), 13), ("vw".into(), 2)]);
    }

    #[test]
    fn the_protocol_line_is_recognised() {
        assert_eq!(announced(br#"{"mailflow_protocol":1}"#), Some(1.into()));
        assert_eq!(announced(br#"{"mailflow_protocol":"2","name":"x"}"#), Some("2".into()));
        assert_eq!(announced(br#"{"time":"2026-12-01T00:00:00Z","direction":"inbound"}"#), None);
        assert_eq!(announced(b"garbage"), None);
    }
}

//! Files, globs and stdin: the inputs of every file-reading collector.
//!
//! Paths come from the config already resolved against its folder. A glob that matches nothing
//! is a warning (rotated files come and go); a named file that cannot be read is an error for
//! that file only, and the collector goes on with the rest.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::{CollectError, Emitter};

/// One thing to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    /// How the input is named in messages and evidence.
    pub fn display_name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_string(),
            Input::File(path) => path.display().to_string(),
        }
    }

    pub fn open(&self) -> Result<Box<dyn BufRead + Send>, CollectError> {
        const BUFFER_BYTES: usize = 256 * 1024;
        match self {
            Input::Stdin => Ok(Box::new(BufReader::with_capacity(BUFFER_BYTES, std::io::stdin()))),
            Input::File(path) => {
                let file = File::open(path).map_err(|source| CollectError::Io { path: path.clone(), source })?;
                Ok(Box::new(BufReader::with_capacity(BUFFER_BYTES, file)))
            }
        }
    }
}

/// Expands `paths` (files, globs, `-` for stdin) into inputs, in a stable order: each pattern's
/// matches sorted by name, patterns in the order given, no file twice.
pub fn expand(paths: &[PathBuf], out: &mut Emitter<'_>) -> Vec<Input> {
    let mut inputs: Vec<Input> = Vec::new();
    let mut push = |input: Input| {
        if !inputs.contains(&input) {
            inputs.push(input);
        }
    };
    for path in paths {
        if path == Path::new("-") {
            push(Input::Stdin);
            continue;
        }
        let text = path.to_string_lossy();
        if !text.contains(['*', '?', '[']) {
            if path.is_dir() {
                out.error(format!(
                    "{}: is a folder; name its files, e.g. \"{}/*.jsonl\"",
                    path.display(),
                    path.display()
                ));
            } else {
                push(Input::File(path.clone()));
            }
            continue;
        }
        let matches = match glob::glob(&text) {
            Ok(paths) => paths,
            Err(e) => {
                out.error(format!("{text}: not a valid glob: {e}"));
                continue;
            }
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in matches {
            match entry {
                Ok(p) if p.is_file() => files.push(p),
                Ok(_) => {}
                Err(e) => out.error(format!("{}: {}", e.path().display(), e.error())),
            }
        }
        if files.is_empty() {
            out.warn(format!("{text}: matched no files"));
        }
        files.sort();
        files.into_iter().map(Input::File).for_each(&mut push);
    }
    inputs
}

/// Reads one line (without its `\n` or `\r\n`) into `buf`, holding at most `max_bytes` of it in
/// memory: a longer line is consumed to its end and reported as [`Line::TooLong`], so one
/// runaway line cannot exhaust memory or hide the lines after it.
pub fn read_line_capped(reader: &mut dyn BufRead, buf: &mut Vec<u8>, max_bytes: usize) -> std::io::Result<Line> {
    buf.clear();
    let mut total = 0usize;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = max_bytes.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room + 1)]);
        total += take;
        reader.consume(take);
        if done {
            break;
        }
    }
    if total == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        total -= 1;
        if buf.last() == Some(&b'\r') {
            buf.pop();
            total -= 1;
        }
    }
    if total > max_bytes {
        buf.clear();
        return Ok(Line::TooLong(total));
    }
    Ok(Line::Read)
}

/// What [`read_line_capped`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Read,
    /// A line of this many bytes, over the limit; its content was dropped.
    TooLong(usize),
    Eof,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_files_globs_and_stdin_in_stable_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.jsonl", "a.jsonl", "c.csv"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.jsonl")).unwrap();
        let mut sink = |_| {};
        let mut out = Emitter::new(&mut sink);
        let inputs = expand(
            &[dir.path().join("*.jsonl"), PathBuf::from("-"), dir.path().join("a.jsonl"), dir.path().join("none*.log")],
            &mut out,
        );
        assert_eq!(
            inputs,
            vec![Input::File(dir.path().join("a.jsonl")), Input::File(dir.path().join("b.jsonl")), Input::Stdin]
        );
        let stats = out.into_stats();
        assert!(stats.errors.is_empty());
        assert_eq!(stats.warnings.len(), 1);
        assert!(stats.warnings[0].ends_with("none*.log: matched no files"));
    }

    #[test]
    fn lines_are_capped_without_losing_the_next_line() {
        let mut reader = std::io::BufReader::with_capacity(4, &b"short\r\nthis line is too long\nok\nlast"[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        loop {
            match read_line_capped(&mut reader, &mut buf, 8).unwrap() {
                Line::Read => got.push(String::from_utf8(buf.clone()).unwrap()),
                Line::TooLong(n) => got.push(format!("<{n} bytes>")),
                Line::Eof => break,
            }
        }
        assert_eq!(got, ["short", "<21 bytes>", "ok", "last"]);
        let mut exact = &b"12345678\n"[..];
        assert_eq!(read_line_capped(&mut exact, &mut buf, 8).unwrap(), Line::Read);
        assert_eq!(buf, b"12345678");
    }

    #[test]
    fn missing_files_fail_when_opened_naming_the_path() {
        let e = Input::File(PathBuf::from("/nonexistent/x.jsonl")).open().err().unwrap();
        assert!(e.to_string().starts_with("/nonexistent/x.jsonl: "), "{e}");
    }
}

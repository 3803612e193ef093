//! Files, globs and stdin: the inputs of every file-reading collector.
//!
//! Paths come from the config already resolved against its folder. A glob that matches nothing
//! is a warning (rotated files come and go); a named file that cannot be read is an error for
//! that file only, and the collector goes on with the rest.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
            Input::Stdin => {
                // Two readers would each get a random share of the lines.
                static TAKEN: AtomicBool = AtomicBool::new(false);
                if TAKEN.swap(true, Ordering::SeqCst) {
                    return Err(CollectError::Other(
                        "standard input (\"-\") is already read by another collector; only one may read it".into(),
                    ));
                }
                Ok(Box::new(BufReader::with_capacity(BUFFER_BYTES, std::io::stdin())))
            }
            Input::File(path) => {
                let file = File::open(path).map_err(|source| CollectError::Io { path: path.clone(), source })?;
                Ok(Box::new(BufReader::with_capacity(BUFFER_BYTES, file)))
            }
        }
    }
}

/// A configured input: `-`, a file, or a glob. Whether a path is a glob is decided from what the
/// admin wrote, so a config folder or a file named `mail[1].log` is never taken for a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSpec {
    Stdin,
    File(PathBuf),
    Glob(String),
}

impl PathSpec {
    /// `configured` as written in the config; relative paths are taken from `base`.
    pub fn new(configured: &Path, base: &Path) -> PathSpec {
        if configured == Path::new("-") {
            return PathSpec::Stdin;
        }
        let text = configured.to_string_lossy();
        let literal = base.join(configured);
        // A name with glob characters that exists as written (`mail[1].log`) is that file.
        if !text.contains(['*', '?', '[']) || literal.exists() {
            return PathSpec::File(literal);
        }
        if configured.is_absolute() {
            PathSpec::Glob(text.into_owned())
        } else {
            let base = glob::Pattern::escape(&base.to_string_lossy());
            PathSpec::Glob(Path::new(&base).join(configured).to_string_lossy().into_owned())
        }
    }
}

/// Expands specs into inputs, in a stable order: each glob's matches sorted by name, specs in
/// the order given, no file twice.
pub fn expand(specs: &[PathSpec], out: &mut Emitter<'_>) -> Vec<Input> {
    let mut inputs: Vec<Input> = Vec::new();
    let mut push = |input: Input| {
        if !inputs.contains(&input) {
            inputs.push(input);
        }
    };
    for spec in specs {
        let pattern = match spec {
            PathSpec::Stdin => {
                push(Input::Stdin);
                continue;
            }
            PathSpec::File(path) if path.is_dir() => {
                out.error(format!(
                    "{}: is a folder; name its files, e.g. \"{}/*.jsonl\"",
                    path.display(),
                    path.display()
                ));
                continue;
            }
            PathSpec::File(path) => {
                push(Input::File(path.clone()));
                continue;
            }
            PathSpec::Glob(pattern) => pattern,
        };
        let matches = match glob::glob(pattern) {
            Ok(paths) => paths,
            Err(e) => {
                out.error(format!("{pattern}: not a valid glob: {e}"));
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
            out.warn(format!("{pattern}: matched no files"));
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
        let specs: Vec<PathSpec> =
            ["*.jsonl", "-", "a.jsonl", "none*.log"].iter().map(|p| PathSpec::new(Path::new(p), dir.path())).collect();
        let inputs = expand(&specs, &mut out);
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
    fn glob_characters_in_the_config_folder_are_literal() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site[1]");
        std::fs::create_dir(&site).unwrap();
        std::fs::write(site.join("mail[1].log"), "").unwrap();
        std::fs::write(site.join("a.log"), "").unwrap();
        assert_eq!(PathSpec::new(Path::new("mail[1].log"), &site), PathSpec::File(site.join("mail[1].log")));
        let mut sink = |_| {};
        let mut out = Emitter::new(&mut sink);
        let inputs = expand(&[PathSpec::new(Path::new("*.log"), &site)], &mut out);
        assert_eq!(inputs, vec![Input::File(site.join("a.log")), Input::File(site.join("mail[1].log"))]);
    }

    #[test]
    fn missing_files_fail_when_opened_naming_the_path() {
        let e = Input::File(PathBuf::from("/nonexistent/x.jsonl")).open().err().unwrap();
        assert!(e.to_string().starts_with("/nonexistent/x.jsonl: "), "{e}");
    }
}

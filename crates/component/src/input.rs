//! Files, globs and stdin: the inputs of every file-reading collector.
//!
//! Paths come from the config already resolved against its folder. A glob that matches nothing
//! is a warning (rotated files come and go); a named file that cannot be read is an error for
//! that file only, and the collector goes on with the rest.

use std::cmp::Reverse;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{CollectError, Emitter, Progress};

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

    /// Opens the input for reading, decompressing gzip, xz and zstd files (told by their first
    /// bytes, not their names, so `mail.log.2.gz` renamed by hand still reads). The bytes read
    /// are added to `progress` as they are read (before decompression; [`expand`] added the
    /// files' sizes to its total).
    pub fn open(&self, progress: &Arc<Progress>) -> Result<Box<dyn BufRead + Send>, CollectError> {
        let raw: Box<dyn Read + Send> = match self {
            Input::Stdin => {
                // Two readers would each get a random share of the lines.
                static TAKEN: AtomicBool = AtomicBool::new(false);
                if TAKEN.swap(true, Ordering::SeqCst) {
                    return Err(CollectError::Other(
                        "standard input (\"-\") is already read by another collector; only one may read it".into(),
                    ));
                }
                Box::new(std::io::stdin())
            }
            Input::File(path) => {
                let file = File::open(path).map_err(|source| CollectError::Io { path: path.clone(), source })?;
                Box::new(file)
            }
        };
        Ok(decompressed(raw, &self.display_name(), progress)?.0)
    }
}

/// `raw`, decompressed if its first bytes say it is compressed (then the flag is true).
pub(crate) fn decompressed(
    raw: Box<dyn Read + Send>,
    name: &str,
    progress: &Arc<Progress>,
) -> Result<(Box<dyn BufRead + Send>, bool), CollectError> {
    let mut reader = counted(raw, progress);
    let head = reader.fill_buf().map_err(|source| CollectError::Io { path: name.into(), source })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok((Box::new(BufReader::with_capacity(BUFFER_BYTES, flate2::bufread::MultiGzDecoder::new(reader))), true))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        let decoder = lzma_rust2::XzReader::new(reader, true);
        Ok((Box::new(BufReader::with_capacity(BUFFER_BYTES, decoder)), true))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(reader)
            .map_err(|e| CollectError::Other(format!("{name}: not a readable zstd file: {e}")))?;
        Ok((Box::new(BufReader::with_capacity(BUFFER_BYTES, decoder)), true))
    } else {
        Ok((Box::new(reader), false))
    }
}

const BUFFER_BYTES: usize = 256 * 1024;

/// `raw` read as is, its bytes counted into `progress`.
pub(crate) fn counted(raw: Box<dyn Read + Send>, progress: &Arc<Progress>) -> BufReader<Counted> {
    BufReader::with_capacity(BUFFER_BYTES, Counted { inner: raw, progress: progress.clone() })
}

/// Whether a file's first bytes are those of a compressed format [`Input::open`] reads.
pub(crate) fn is_compressed(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// Counts the bytes read from a file (before decompression, so they add up to its size).
pub(crate) struct Counted {
    inner: Box<dyn Read + Send>,
    progress: Arc<Progress>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
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
    /// A collector's `paths` option, relative paths taken from `base`; `Err` says why the list
    /// is unusable, for the collector's config error.
    pub fn all(configured: &[PathBuf], base: &Path) -> Result<Vec<PathSpec>, &'static str> {
        if configured.is_empty() {
            return Err("`paths` is empty; name at least one file, glob or \"-\"");
        }
        Ok(configured.iter().map(|p| PathSpec::new(p, base)).collect())
    }

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

/// Expands specs into inputs, in a stable order: specs in the order given, each glob's matches
/// in time order (see [`rotation_order`]), no file twice. Adds the files' sizes to the
/// emitter's progress total.
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
        files.sort_by_cached_key(|p| rotation_order(p));
        files.into_iter().map(Input::File).for_each(&mut push);
    }
    for input in &inputs {
        if let Input::File(path) = input {
            out.progress().add_total(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
        }
    }
    inputs
}

/// Sorts rotated logs oldest first, so a log read through a glob reads in time order:
/// `mail.log.3.gz, mail.log.2.gz, mail.log.1, mail.log` (logrotate's numbers count back in time)
/// and `maillog-20261129.gz, maillog-20261206, maillog` (dates count forward). The live file,
/// without a suffix, is the newest. Files of different logs sort by name.
pub fn rotation_order(path: &Path) -> (String, u8, Reverse<u64>, String) {
    let name = path.to_string_lossy();
    let mut stem: &str = &name;
    for compressed in [".gz", ".zst", ".xz", ".bz2"] {
        if let Some(rest) = stem.strip_suffix(compressed) {
            stem = rest;
            break;
        }
    }
    let suffix = stem.rfind(['.', '-']).map(|i| (&stem[..i], &stem[i + 1..]));
    match suffix {
        Some((base, digits)) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            if digits.len() >= 8 {
                (base.to_string(), 0, Reverse(0), digits.to_string())
            } else {
                (base.to_string(), 0, Reverse(digits.parse().unwrap_or(u64::MAX)), String::new())
            }
        }
        _ => (stem.to_string(), 1, Reverse(0), String::new()),
    }
}

/// One line handed out by [`for_each_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRef<'a> {
    /// The line without its `\n` or `\r\n`.
    Text(&'a [u8]),
    /// A line of this many bytes, over the limit; its content was dropped.
    TooLong(usize),
}

/// Calls `visit` with every line of `reader`, in order. Reading (and decompressing) runs on a
/// second thread, a block at a time, so a file parses while the next block is read; no line
/// is copied unless it straddles two blocks, and no line holds more than `max_line_bytes` in
/// memory: a longer line is reported as [`LineRef::TooLong`], so one runaway line cannot exhaust
/// memory or hide the lines after it. An I/O error (a truncated gzip file, say) ends the input
/// after the lines before it.
pub fn for_each_line(
    reader: Box<dyn BufRead + Send>,
    max_line_bytes: usize,
    mut visit: impl FnMut(LineRef<'_>),
) -> std::io::Result<()> {
    for_each_line_at(reader, max_line_bytes, false, |line, _| {
        visit(line);
        true
    })
    .map(drop)
}

/// [`for_each_line`], also telling the bytes read through the end of each line (its newline
/// included). With `hold_tail`, a last line without a newline is not visited (its writer may
/// not have finished it); returns the bytes of that line. Reading stops early when `visit`
/// returns false.
pub fn for_each_line_at(
    mut reader: Box<dyn BufRead + Send>,
    max_line_bytes: usize,
    hold_tail: bool,
    mut visit: impl FnMut(LineRef<'_>, u64) -> bool,
) -> std::io::Result<u64> {
    use std::sync::mpsc::sync_channel;
    const BLOCK_BYTES: usize = 1024 * 1024;
    let (full_tx, full_rx) = sync_channel::<std::io::Result<(Vec<u8>, usize)>>(2);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(3);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            loop {
                let mut block = empty_rx.try_recv().unwrap_or_else(|_| vec![0; BLOCK_BYTES]);
                // What was read before an error still counts.
                let (filled, result) = fill_block(&mut reader, &mut block);
                if filled > 0 && full_tx.send(Ok((block, filled))).is_err() {
                    return;
                }
                match result {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => return drop(full_tx.send(Err(e))),
                }
            }
        });
        let mut carry: Vec<u8> = Vec::new();
        // The true length of the partial line in `carry`, which keeps at most `max_line_bytes + 1`.
        let mut carry_len = 0usize;
        // Bytes before the line being assembled.
        let mut offset = 0u64;
        let mut emit = |line: &[u8], len: usize, newline: u64, visit: &mut dyn FnMut(LineRef<'_>, u64) -> bool| {
            offset += len as u64 + newline;
            let text = line.strip_suffix(b"\r").unwrap_or(line);
            let len = len - (line.len() - text.len());
            visit(if len > max_line_bytes { LineRef::TooLong(len) } else { LineRef::Text(text) }, offset)
        };
        for block in full_rx {
            let (block, filled) = block?;
            let mut rest = &block[..filled];
            while let Some(i) = memchr::memchr(b'\n', rest) {
                let (line, next) = (&rest[..i], &rest[i + 1..]);
                let go_on = if carry_len == 0 {
                    emit(line, line.len(), 1, &mut visit)
                } else {
                    let room = (max_line_bytes + 1).saturating_sub(carry.len());
                    carry.extend_from_slice(&line[..line.len().min(room)]);
                    carry_len += line.len();
                    let go_on = emit(&carry, carry_len, 1, &mut visit);
                    carry.clear();
                    carry_len = 0;
                    go_on
                };
                if !go_on {
                    return Ok(0);
                }
                rest = next;
            }
            let room = (max_line_bytes + 1).saturating_sub(carry.len());
            carry.extend_from_slice(&rest[..rest.len().min(room)]);
            carry_len += rest.len();
            let _ = empty_tx.try_send(block);
        }
        if carry_len > 0 && hold_tail {
            return Ok(carry_len as u64);
        }
        if carry_len > 0 {
            emit(&carry, carry_len, 0, &mut visit);
        }
        Ok(0)
    })
}

/// Fills `block` from `reader`, straight into it (a `BufReader` passes reads this large
/// through without copying): returns the bytes read and whether the input ended, or the error
/// that stopped it after those bytes.
fn fill_block(reader: &mut dyn BufRead, block: &mut [u8]) -> (usize, std::io::Result<bool>) {
    let mut filled = 0;
    while filled < block.len() {
        match reader.read(&mut block[filled..]) {
            Ok(0) => return (filled, Ok(true)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Err(e)),
        }
    }
    (filled, Ok(false))
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
        let read = |text: &'static [u8]| {
            let mut got = Vec::new();
            for_each_line(Box::new(text), 8, |line| match line {
                LineRef::Text(t) => got.push(String::from_utf8(t.to_vec()).unwrap()),
                LineRef::TooLong(n) => got.push(format!("<{n} bytes>")),
            })
            .unwrap();
            got
        };
        assert_eq!(read(b"short\r\nthis line is too long\nok\nlast"), ["short", "<21 bytes>", "ok", "last"]);
        assert_eq!(read(b"12345678\n"), ["12345678"]);
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
    fn rotated_logs_sort_oldest_first() {
        let mut names = vec![
            "mail.log",
            "mail.log.1",
            "mail.log.10.gz",
            "mail.log.2.gz",
            "maillog",
            "maillog-20261206",
            "maillog-20261129.gz",
            "other.log",
        ];
        names.sort_by_cached_key(|n| rotation_order(Path::new(n)));
        assert_eq!(
            names,
            [
                "mail.log.10.gz",
                "mail.log.2.gz",
                "mail.log.1",
                "mail.log",
                "maillog-20261129.gz",
                "maillog-20261206",
                "maillog",
                "other.log"
            ]
        );
    }

    #[test]
    fn lines_straddle_blocks_and_compressed_input_reads_the_same() {
        let mut text = Vec::new();
        for i in 0..60_000 {
            text.extend_from_slice(format!("line {i} {}\r\n", "x".repeat(i % 97)).as_bytes());
        }
        text.extend_from_slice(&[b'y'; 5000]);
        text.extend_from_slice(b"\nlast");
        let read = |input: Box<dyn BufRead + Send>| {
            let mut lines = Vec::new();
            for_each_line(input, 4096, |line| match line {
                LineRef::Text(t) => lines.push(String::from_utf8(t.to_vec()).unwrap()),
                LineRef::TooLong(n) => lines.push(format!("<{n}>")),
            })
            .unwrap();
            lines
        };
        let plain = read(Box::new(std::io::Cursor::new(text.clone())));
        assert_eq!(plain.len(), 60_002);
        assert_eq!(plain[59_999], format!("line 59999 {}", "x".repeat(59_999 % 97)));
        assert_eq!(plain[60_000..], ["<5000>", "last"]);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log.1.gz");
        let mut gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        gz.finish().unwrap();
        let progress = Arc::new(Progress::default());
        let input = Input::File(path.clone()).open(&progress).unwrap();
        assert_eq!(read(input), plain);
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(progress.get(), (size, 0));
    }

    const XZ: [u8; 124] = [
        0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0xe6, 0xd6, 0xb4, 0x46, 0x02, 0x00, 0x21, 0x01, 0x16, 0x00,
        0x00, 0x00, 0x74, 0x2f, 0xe5, 0xa3, 0x01, 0x00, 0x43, 0x44, 0x65, 0x63, 0x20, 0x20, 0x34, 0x20, 0x31, 0x35,
        0x3a, 0x30, 0x30, 0x3a, 0x30, 0x30, 0x20, 0x6d, 0x78, 0x20, 0x70, 0x6f, 0x73, 0x74, 0x66, 0x69, 0x78, 0x2f,
        0x71, 0x6d, 0x67, 0x72, 0x5b, 0x31, 0x5d, 0x3a, 0x20, 0x41, 0x31, 0x42, 0x32, 0x43, 0x33, 0x44, 0x34, 0x45,
        0x35, 0x3a, 0x20, 0x72, 0x65, 0x6d, 0x6f, 0x76, 0x65, 0x64, 0x0a, 0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64, 0x20,
        0x6c, 0x69, 0x6e, 0x65, 0x0a, 0x00, 0xbc, 0xd9, 0x34, 0xf1, 0xcb, 0x8e, 0x26, 0x98, 0x00, 0x01, 0x5c, 0x44,
        0xfa, 0x22, 0x39, 0x47, 0x1f, 0xb6, 0xf3, 0x7d, 0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x59, 0x5a,
    ];
    const ZSTD: [u8; 81] = [
        0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x44, 0x21, 0x02, 0x00, 0x44, 0x65, 0x63, 0x20, 0x20, 0x34, 0x20, 0x31, 0x35,
        0x3a, 0x30, 0x30, 0x3a, 0x30, 0x30, 0x20, 0x6d, 0x78, 0x20, 0x70, 0x6f, 0x73, 0x74, 0x66, 0x69, 0x78, 0x2f,
        0x71, 0x6d, 0x67, 0x72, 0x5b, 0x31, 0x5d, 0x3a, 0x20, 0x41, 0x31, 0x42, 0x32, 0x43, 0x33, 0x44, 0x34, 0x45,
        0x35, 0x3a, 0x20, 0x72, 0x65, 0x6d, 0x6f, 0x76, 0x65, 0x64, 0x0a, 0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64, 0x20,
        0x6c, 0x69, 0x6e, 0x65, 0x0a, 0xa5, 0x14, 0xb1, 0x49,
    ];

    #[test]
    fn xz_and_zstd_files_read_as_plain_text() {
        // Made by `xz` and `zstd` 1.5 from the two lines below.
        let text = "Dec  4 15:00:00 mx postfix/qmgr[1]: A1B2C3D4E5: removed\nsecond line\n";
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [("t.xz", &XZ[..]), ("t.zst", &ZSTD[..])] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let mut read = String::new();
            Input::File(path).open(&Arc::default()).unwrap().read_to_string(&mut read).unwrap();
            assert_eq!(read, text, "{name}");
        }
    }

    #[test]
    fn missing_files_fail_when_opened_naming_the_path() {
        let e = Input::File(PathBuf::from("/nonexistent/x.jsonl")).open(&Arc::default()).err().unwrap();
        assert!(e.to_string().starts_with("/nonexistent/x.jsonl: "), "{e}");
    }
}

//! Where `mailflow ingest` left each log file, so the next run reads only what is new.
//!
//! A file is known by its content, not its name: rotation renames it (`mail.log` → `mail.log.1`),
//! compresses it (`mail.log.2.gz`, a new inode) or copies and truncates it. A [`Files`] mark holds
//! a hash of a file's first bytes (decompressed), its device and inode, and how far it was read; a
//! file whose first bytes match a mark continues at the mark's offset, whatever its name now.
//! A file whose inode kept its name but whose first bytes changed was truncated or replaced, and
//! is read from its start.

use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::YearRule;
use crate::input::{self, Input, LineRef};
use crate::{CollectError, Emitter, Progress, Resume};

/// Bytes of a file's start that identify it.
const HEAD_BYTES: usize = 1024;
/// A mark shorter than this identifies only the file it was made from (same device and inode):
/// a short start (a CSV header, a few lines) could start other files too.
const MIN_CONTENT_MATCH: usize = HEAD_BYTES;
/// A file modified this recently may still be written: its last line, if it has no newline yet,
/// waits for the next run.
const SETTLED: Duration = Duration::from_secs(60);
/// Marks of files no run has seen for this long are forgotten.
const FORGET_AFTER_SECS: i64 = 31 * 24 * 3600;

/// What a line-by-line collector keeps between runs: how far each file was read, the year the
/// next line's stamp continues from (with a configured `year`), and its parser's in-flight state
/// (sessions and messages whose lines straddle the checkpoint).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub files: Files,
    pub year: Option<YearRule>,
    pub parser: Vec<u8>,
}

/// How far each file of a collector was read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Files {
    marks: Vec<Mark>,
    /// Files of this run that still are what their mark says (see [`Files::plan`]): a copy of
    /// one must not take its mark.
    #[serde(skip)]
    alive: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mark {
    /// Where the file was last seen, for messages.
    path: String,
    dev: u64,
    ino: u64,
    /// The file's size and modification time when last opened: unchanged means nothing new.
    size: u64,
    mtime_ns: i128,
    head_len: u32,
    head_hash: [u8; 16],
    /// Bytes (decompressed) and lines read.
    offset: u64,
    lines: u64,
    /// A compressed file read to its end: compressed files do not grow.
    complete: bool,
    /// Unix seconds of the run that last saw the file.
    seen: i64,
}

/// The part of an input after what earlier runs read.
pub type Rest = Box<dyn BufRead + Send>;

/// Where an input was opened: after what the last run read of it.
pub struct Opened {
    /// Bytes (decompressed) and lines before the reader's first byte.
    pub offset: u64,
    pub lines: u64,
    /// Whether a last line without a newline must wait: the file may still be written.
    pub hold_tail: bool,
    compressed: bool,
    mark: Option<usize>,
}

impl Files {
    /// Notes which of a run's inputs still start as their marks say, before any is opened: a
    /// file that starts as one of them is a copy (a backup, or logrotate's `copytruncate` before
    /// the truncation), whose lines are read from the original.
    pub fn plan(&mut self, inputs: &[Input]) {
        self.alive.clear();
        for input in inputs {
            let Input::File(path) = input else { continue };
            let Ok(file) = File::open(path) else { continue };
            let Ok(meta) = file.metadata() else { continue };
            let Some(mark) = self.marks.iter().find(|m| (m.dev, m.ino) == (meta.dev(), meta.ino())) else { continue };
            let mut head = vec![0; mark.head_len as usize];
            let unchanged_compressed = mark.complete && mark.size == meta.len();
            let same_start =
                read_at_most(&file, &mut head).is_ok_and(|n| n == head.len() && hash(&head) == mark.head_hash);
            if unchanged_compressed || same_start {
                self.alive.push((mark.dev, mark.ino));
            }
        }
    }

    /// Opens `input` after what earlier runs read of it: a reader of the rest, and where it
    /// starts. `None` when nothing is new. Standard
    /// input is read whole and not tracked.
    pub fn open(
        &mut self,
        input: &Input,
        progress: &Arc<Progress>,
        out: &mut Emitter<'_>,
    ) -> Result<Option<(Rest, Opened)>, CollectError> {
        let path = match input {
            Input::Stdin => {
                let reader = input.open(progress)?;
                let opened = Opened { offset: 0, lines: 0, hold_tail: false, compressed: false, mark: None };
                return Ok(Some((reader, opened)));
            }
            Input::File(path) => path,
        };
        let name = input.display_name();
        let io_error = |source| CollectError::Io { path: path.clone(), source };
        let mut file = File::open(path).map_err(io_error)?;
        let meta = file.metadata().map_err(io_error)?;
        let (dev, ino, size) = (meta.dev(), meta.ino(), meta.len());
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let now = unix_now();
        let unchanged = |m: &Mark| {
            (m.dev, m.ino, m.size, m.mtime_ns) == (dev, ino, size, mtime_ns) && (m.complete || m.offset == size)
        };
        if let Some(mark) = self.marks.iter_mut().find(|m| unchanged(m)) {
            mark.seen = now;
            mark.path = name;
            progress.advance(size);
            return Ok(None);
        }

        let mut magic = [0u8; 6];
        let magic_len = read_at_most(&file, &mut magic).map_err(io_error)?;
        let compressed = input::is_compressed(&magic[..magic_len]);
        // A compressed file is read from its start (its offsets count decompressed bytes); a
        // plain one is read from where the last run stopped.
        let (decompressing, head) = if compressed {
            let (mut reader, _) = input::decompressed(Box::new(file.try_clone().map_err(io_error)?), &name, progress)?;
            let mut head = Vec::with_capacity(HEAD_BYTES);
            reader.by_ref().take(HEAD_BYTES as u64).read_to_end(&mut head).map_err(io_error)?;
            (Some(reader), head)
        } else {
            let mut head = vec![0; HEAD_BYTES];
            let n = read_at_most(&file, &mut head).map_err(io_error)?;
            head.truncate(n);
            (None, head)
        };

        let (found, copy) = self.find(dev, ino, &head, &name, out);
        let (offset, lines) = found.map_or((0, 0), |i| (self.marks[i].offset, self.marks[i].lines));
        let same_file = found.is_some_and(|i| (self.marks[i].dev, self.marks[i].ino) == (dev, ino));
        let (offset, lines) = match () {
            _ if compressed || offset <= size => (offset, lines),
            // Another file with the same start, shorter: a copy of what was read, nothing new.
            _ if !same_file => (size, lines),
            _ => {
                out.warn(format!("{name}: shorter than when last read (truncated); reading it from the start"));
                (0, 0)
            }
        };
        let fresh = Mark {
            path: name.clone(),
            dev,
            ino,
            size,
            mtime_ns,
            head_len: head.len() as u32,
            head_hash: hash(&head),
            offset,
            lines,
            complete: false,
            seen: now,
        };
        let mark = match found {
            Some(i) => {
                self.marks[i] = fresh;
                i
            }
            None => {
                self.marks.push(fresh);
                self.marks.len() - 1
            }
        };
        if copy {
            out.warn(format!(
                "{name}: starts as another file of this run does, so it is a copy; its lines are read there"
            ));
            self.marks[mark].offset = size;
            self.marks[mark].complete = true;
            return Ok(None);
        }
        if head.is_empty() {
            return Ok(None);
        }

        let reader: Box<dyn BufRead + Send> = if let Some(mut reader) = decompressing {
            let already = offset.saturating_sub(head.len() as u64);
            let skipped = std::io::copy(&mut reader.by_ref().take(already), &mut std::io::sink()).map_err(io_error)?;
            if skipped < already {
                out.warn(format!("{name}: holds less than was read of it before; nothing new in it"));
                self.marks[mark].complete = true;
                return Ok(None);
            }
            let rest_of_head = head.get(offset as usize..).unwrap_or_default().to_vec();
            Box::new(std::io::Cursor::new(rest_of_head).chain(reader))
        } else {
            file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
            progress.advance(offset);
            Box::new(input::counted(Box::new(file), progress))
        };
        let modified = meta.modified().ok().and_then(|t| SystemTime::now().duration_since(t).ok());
        let hold_tail = !compressed && modified.is_none_or(|age| age < SETTLED);
        Ok(Some((reader, Opened { offset, lines, hold_tail, compressed, mark: Some(mark) })))
    }

    /// The mark of the file with this identity and first bytes, if any, and whether the file
    /// is a copy of another file of this run. Of several marks of the same start (a file renamed,
    /// and a copy of it made earlier), the one read furthest counts.
    fn find(&mut self, dev: u64, ino: u64, head: &[u8], name: &str, out: &mut Emitter<'_>) -> (Option<usize>, bool) {
        let matches = |m: &Mark| {
            let len = m.head_len as usize;
            len > 0 && len <= head.len() && hash(&head[..len]) == m.head_hash
        };
        let mut own = self.marks.iter().position(|m| (m.dev, m.ino) == (dev, ino));
        if let Some(i) = own
            && !matches(&self.marks[i])
        {
            // Truncated or replaced in place. The mark stays for a copy made before (logrotate's
            // `copytruncate`), which continues it.
            let old = &mut self.marks[i];
            (old.dev, old.ino) = (0, 0);
            own = None;
            if old.path == name && old.offset > 0 {
                out.warn(format!(
                    "{name}: its first bytes changed since the last run (truncated or replaced); reading it from the start"
                ));
            }
        }
        let (owned, free): (Vec<usize>, Vec<usize>) = (0..self.marks.len())
            .filter(|&i| {
                Some(i) != own && self.marks[i].head_len as usize >= MIN_CONTENT_MATCH && matches(&self.marks[i])
            })
            .partition(|&i| self.alive.contains(&(self.marks[i].dev, self.marks[i].ino)));
        let found = own.into_iter().chain(free).max_by_key(|&i| self.marks[i].offset);
        if let (Some(found), Some(own)) = (found, own)
            && found != own
        {
            self.marks.remove(own);
            return (Some(if own < found { found - 1 } else { found }), false);
        }
        (found, found.is_none() && !owned.is_empty())
    }

    /// Records that `opened` was read through `offset` bytes and `lines` lines of its reader.
    pub fn advance(&mut self, opened: &Opened, offset: u64, lines: u64) {
        if let Some(mark) = opened.mark.and_then(|i| self.marks.get_mut(i)) {
            mark.offset = opened.offset + offset;
            mark.lines = opened.lines + lines;
        }
    }

    /// Records that `opened` was read to its end: a compressed file needs no reading again.
    pub fn finished(&mut self, opened: &Opened) {
        if let Some(mark) = opened.mark.and_then(|i| self.marks.get_mut(i)) {
            mark.complete = opened.compressed;
        }
    }

    /// Records that `opened` was read whole, for a file that is read whole or not at all.
    pub fn read_whole(&mut self, opened: &Opened) {
        if let Some(mark) = opened.mark.and_then(|i| self.marks.get_mut(i)) {
            mark.offset = mark.size;
            mark.complete = true;
        }
    }

    /// Forgets files no run has seen for a month.
    pub fn forget_old(&mut self) {
        let now = unix_now();
        self.marks.retain(|m| now - m.seen < FORGET_AFTER_SECS);
    }
}

/// What a line-by-line collector does with the lines of an incremental read.
pub trait Lines {
    /// One line, numbered in its file.
    fn line(&mut self, line: LineRef<'_>, number: u64, out: &mut Emitter<'_>);
    /// The collector's whole state, with `files`, for a checkpoint.
    fn save(&self, files: &Files) -> Vec<u8>;
}

/// Reads what is new in `input` into `lines`, checkpointing every `resume.checkpoint_bytes`
/// and at the end of the input. `Err` when the input cannot be read or a checkpoint failed.
pub fn read_new_lines(
    files: &mut Files,
    input: &Input,
    resume: Resume<'_>,
    max_line_bytes: usize,
    lines: &mut dyn Lines,
    out: &mut Emitter<'_>,
) -> Result<(), CollectError> {
    let name = input.display_name();
    let Some((reader, opened)) = files.open(input, &out.progress().clone(), out)? else {
        return Ok(());
    };
    let mut number = opened.lines;
    let mut next_checkpoint = resume.checkpoint_bytes;
    let mut failed = None;
    let mut read_through = 0;
    let read = input::for_each_line_at(reader, max_line_bytes, opened.hold_tail, |line, offset| {
        number += 1;
        read_through = offset;
        lines.line(line, number, out);
        if offset >= next_checkpoint {
            next_checkpoint = offset + resume.checkpoint_bytes;
            files.advance(&opened, offset, number - opened.lines);
            if let Err(e) = out.checkpoint(&lines.save(files)) {
                failed = Some(e);
                return false;
            }
        }
        true
    });
    if let Some(e) = failed {
        return Err(e);
    }
    // After a read error (a truncated gzip file) the lines before it count.
    let read = read.map_err(|source| CollectError::Io { path: name.into(), source });
    files.advance(&opened, read_through, number - opened.lines);
    if read.is_ok() {
        files.finished(&opened);
    }
    out.checkpoint(&lines.save(files))?;
    read.map(drop)
}

/// Encodes a parser's in-flight state with the version of its layout, for
/// [`crate::logs::LogParser::save`]: a later mailflow whose layout changed refuses it
/// ([`load_versioned`]) rather than misread it. Named fields, so optional ones may be absent.
pub fn save_versioned<T: Serialize>(version: u32, state: &T) -> Vec<u8> {
    #[derive(Serialize)]
    struct Versioned<'s, T> {
        version: u32,
        state: &'s T,
    }
    rmp_serde::to_vec_named(&Versioned { version, state }).expect("in-flight states serialize")
}

/// Decodes what [`save_versioned`] made if it has `version`; errors name the `collector`.
pub fn load_versioned<T: DeserializeOwned>(saved: &[u8], version: u32, collector: &str) -> Result<T, String> {
    // The version alone first: a state of another version may not decode.
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    #[derive(Deserialize)]
    struct Versioned<T> {
        state: T,
    }
    let damaged = |e: rmp_serde::decode::Error| format!("the checkpoint of the {collector} collector is damaged: {e}");
    let Version { version: found } = rmp_serde::from_slice(saved).map_err(damaged)?;
    if found != version {
        return Err(format!(
            "the checkpoint was written by another version of the {collector} collector (format {found}, this one \
             reads {version})"
        ));
    }
    let Versioned { state } = rmp_serde::from_slice(saved).map_err(damaged)?;
    Ok(state)
}

/// Encodes a collector's state for [`Emitter::checkpoint`].
pub fn save<T: Serialize>(state: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(state).expect("checkpoint states serialize")
}

/// Decodes what [`save`] made; an empty state (the first run) is the default.
pub fn load<T: DeserializeOwned + Default>(state: &[u8]) -> Result<T, String> {
    if state.is_empty() {
        return Ok(T::default());
    }
    rmp_serde::from_slice(state).map_err(|e| format!("the checkpoint cannot be read ({e}); `mailflow store forget` the source to read its logs again from the start"))
}

fn read_at_most(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn hash(bytes: &[u8]) -> [u8; 16] {
    let digest = Sha256::digest(bytes);
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Collects the lines read, as "number:text".
    #[derive(Default)]
    struct Seen(Vec<String>);

    impl Lines for Seen {
        fn line(&mut self, line: LineRef<'_>, number: u64, _out: &mut Emitter<'_>) {
            if let LineRef::Text(text) = line {
                self.0.push(format!("{number}:{}", String::from_utf8_lossy(text)));
            }
        }

        fn save(&self, files: &Files) -> Vec<u8> {
            save(files)
        }
    }

    /// Reads what is new in `paths` (in order) after `state`; returns the lines, warnings and state.
    fn read(state: &[u8], paths: &[&Path]) -> (Vec<String>, Vec<String>, Vec<u8>) {
        let mut files: Files = load(state).unwrap();
        files.plan(&paths.iter().map(|p| Input::File(p.to_path_buf())).collect::<Vec<_>>());
        let mut ignore = |_| {};
        let mut last = Vec::new();
        let mut keep = |state: &[u8]| {
            last = state.to_vec();
            Ok(())
        };
        let mut out = Emitter::new(&mut ignore).with_checkpoints(&mut keep);
        let mut seen = Seen::default();
        let resume = Resume { state, checkpoint_bytes: 64 };
        for path in paths {
            read_new_lines(&mut files, &Input::File(path.to_path_buf()), resume, 1000, &mut seen, &mut out).unwrap();
        }
        let warnings = out.into_stats().warnings;
        (seen.0, warnings, last)
    }

    fn lines(from: usize, to: usize) -> String {
        (from..to).map(|i| format!("Dec  4 10:00:{:02} mx postfix/smtpd[{i}]: line number {i}\n", i % 60)).collect()
    }

    #[test]
    fn renamed_and_compressed_files_continue_where_they_were_left() {
        let dir = tempfile::tempdir().unwrap();
        let (live, rotated, gz) =
            (dir.path().join("mail.log"), dir.path().join("mail.log.1"), dir.path().join("mail.log.2.gz"));
        std::fs::write(&live, lines(0, 40)).unwrap();
        let (seen, _, state) = read(&[], &[&live]);
        assert_eq!(seen.len(), 40);
        // More lines, then rotation: the renamed file's new lines and the new live file.
        std::fs::write(&live, lines(0, 45)).unwrap();
        std::fs::rename(&live, &rotated).unwrap();
        std::fs::write(&live, lines(100, 103)).unwrap();
        let (seen, _, state) = read(&state, &[&rotated, &live]);
        assert_eq!(seen.first().map(String::as_str), Some("41:Dec  4 10:00:40 mx postfix/smtpd[40]: line number 40"));
        assert_eq!(seen.len(), 5 + 3, "{seen:?}");
        // The rotated file compressed: a new inode, the same content, nothing new in it.
        let mut encoder = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &std::fs::read(&rotated).unwrap()).unwrap();
        encoder.finish().unwrap();
        std::fs::remove_file(&rotated).unwrap();
        let (seen, warnings, state) = read(&state, &[&gz, &live]);
        assert_eq!((seen.len(), warnings.len()), (0, 0), "{seen:?} {warnings:?}");
        // Read to its end once, the compressed file is not even opened again.
        let files: Files = load(&state).unwrap();
        assert!(files.marks.iter().any(|m| m.complete && m.path.ends_with(".gz")), "{files:?}");
    }

    #[test]
    fn copies_of_a_file_are_not_read_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (live, copy) = (dir.path().join("mail.log"), dir.path().join("mail.log.1"));
        std::fs::write(&live, lines(0, 40)).unwrap();
        let (_, _, state) = read(&[], &[&live]);
        // A partial backup beside the live file, which has grown: only the live file's new lines.
        std::fs::write(&copy, lines(0, 30)).unwrap();
        std::fs::write(&live, lines(0, 42)).unwrap();
        let (seen, warnings, state) = read(&state, &[&copy, &live]);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(warnings[0].contains("is a copy"), "{warnings:?}");
        // copytruncate, the live file listed first: its new start, then the copy's rest.
        std::fs::remove_file(&copy).unwrap();
        std::fs::write(&live, lines(0, 45)).unwrap();
        std::fs::copy(&live, &copy).unwrap();
        std::fs::write(&live, lines(200, 240)).unwrap();
        let (seen, _, _) = read(&state, &[&live, &copy]);
        assert_eq!(seen.len(), 40 + 3, "{seen:?}");
    }

    #[test]
    fn a_line_still_being_written_waits_and_a_truncated_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("mail.log");
        let text = lines(0, 30);
        std::fs::write(&live, &text[..text.len() - 10]).unwrap();
        let (seen, _, state) = read(&[], &[&live]);
        assert_eq!(seen.len(), 29, "the unfinished last line waits");
        std::fs::write(&live, &text).unwrap();
        let (seen, _, state) = read(&state, &[&live]);
        assert_eq!(seen, [format!("30:{}", text.lines().nth(29).unwrap())]);
        // Truncated in place and written anew: read from its start, and said.
        std::fs::write(&live, lines(200, 202)).unwrap();
        let (seen, warnings, _) = read(&state, &[&live]);
        assert_eq!(seen.len(), 2);
        assert!(warnings[0].contains("first bytes changed"), "{warnings:?}");
    }

    #[test]
    fn a_short_file_is_known_by_its_inode_only() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        std::fs::write(&a, "short line\n").unwrap();
        let (_, _, state) = read(&[], &[&a]);
        // Another file that starts the same is another file: a few bytes say too little.
        std::fs::write(&b, "short line\nand more\n").unwrap();
        let (seen, _, _) = read(&state, &[&b]);
        assert_eq!(seen, ["1:short line", "2:and more"]);
    }

    #[test]
    fn damaged_state_is_refused_with_what_to_do() {
        let e = load::<Files>(b"\x93garbage").unwrap_err();
        assert!(e.contains("mailflow store forget"), "{e}");
    }
}

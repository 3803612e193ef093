//! The in-flight state of a collection, saved between incremental runs: a run that stops after
//! any line saves it, and the next run restores it and reads on as if it had never stopped.
//!
//! What is saved is what lines leave behind for later lines: the keys with their stored fields
//! and held events, the `drop` and delivery marks, the `hold_secs` deadlines, and the latest log
//! time (timeouts are measured in it). Per-file and per-run things are not: the clock and the
//! position in a file belong to the caller, the counts for warnings to the run.
//!
//! The encoding is MessagePack with field names, so optional fields can be left out. A
//! checkpoint names its format and the patterns it was read with: a held key means something
//! only under the patterns that stored it, so a changed pattern set refuses the checkpoint
//! instead of misreading it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::{Marks, Store};
use crate::{HeldAt, Reader, RegexConfig};

/// Format of the checkpoint; a change of what is saved or how makes a new one.
const FORMAT: u32 = 1;

/// One checkpoint: borrowed when saved, owned when restored.
#[derive(Serialize, Deserialize)]
struct Checkpoint<'a> {
    format: u32,
    patterns: u64,
    now: i64,
    next_held_id: u64,
    sessions: Cow<'a, Store>,
    messages: Cow<'a, Store>,
    dropped: Cow<'a, Marks>,
    delivered: Cow<'a, Marks>,
    deadlines: Cow<'a, BTreeMap<(i64, u64), HeldAt>>,
}

/// What is read first, so another format is named as such rather than failing to decode.
#[derive(Deserialize)]
struct Header {
    format: u32,
}

impl Reader {
    /// The in-flight state (keys, held events, deadlines), for a checkpoint.
    pub(crate) fn save(&self) -> Vec<u8> {
        // Released events go out before a line ends, so there are none between lines.
        debug_assert!(self.released.is_empty());
        let checkpoint = Checkpoint {
            format: FORMAT,
            patterns: self.fingerprint,
            now: self.now,
            next_held_id: self.next_held_id,
            sessions: Cow::Borrowed(&self.sessions),
            messages: Cow::Borrowed(&self.messages),
            dropped: Cow::Borrowed(&self.dropped),
            delivered: Cow::Borrowed(&self.delivered),
            deadlines: Cow::Borrowed(&self.deadlines),
        };
        rmp_serde::to_vec_named(&checkpoint).expect("the state is plain data, which MessagePack can hold")
    }

    /// Continues from a saved state; Err says why it cannot, and leaves the reader as it was.
    pub(crate) fn restore(&mut self, saved: &[u8]) -> Result<(), String> {
        let damaged = |e: &dyn std::fmt::Display| format!("the checkpoint of the regex collector is damaged: {e}");
        let header: Header = rmp_serde::from_slice(saved).map_err(|e| damaged(&e))?;
        if header.format != FORMAT {
            return Err(format!(
                "the checkpoint was written by another version of the regex collector (format {}, this one reads \
                 {FORMAT})",
                header.format
            ));
        }
        let checkpoint: Checkpoint<'static> = rmp_serde::from_slice(saved).map_err(|e| damaged(&e))?;
        if checkpoint.patterns != self.fingerprint {
            return Err("the patterns changed since the checkpoint was written, so the keys and held events it \
                        saved may mean something else now"
                .into());
        }
        // A tag indexes the per-pattern counts.
        if checkpoint.dropped.tags().any(|tag| tag >= self.dropped_by.len()) {
            return Err(damaged(&"a drop mark names a pattern that does not exist"));
        }
        self.now = checkpoint.now;
        self.next_held_id = checkpoint.next_held_id;
        self.sessions.restore(checkpoint.sessions.into_owned());
        self.messages.restore(checkpoint.messages.into_owned());
        self.dropped.restore(checkpoint.dropped.into_owned());
        self.delivered.restore(checkpoint.delivered.into_owned());
        self.deadlines = checkpoint.deadlines.into_owned();
        Ok(())
    }
}

/// The fingerprint of what gives saved keys their meaning: each pattern's name and regex, in
/// order (drop marks name patterns by position), and what it does with its keys. Value maps,
/// `set`, `default`, time formats and limits only shape lines still to come, so changing them
/// keeps the checkpoint. FNV-1a, as it must not change between builds.
pub(crate) fn fingerprint(config: &RegexConfig) -> u64 {
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    hash.number(config.patterns.len() as u64);
    for p in &config.patterns {
        hash.text(p.name.as_deref().unwrap_or(""));
        hash.number(u64::from(p.name.is_some()));
        hash.text(&p.regex);
        hash.text(p.emit.map_or("", |d| d.as_str()));
        let flags = [p.hold, p.end, p.drop, p.ignore, p.unless_delivered];
        hash.number(flags.iter().fold(0, |bits, &flag| bits << 1 | u64::from(flag)));
    }
    hash.0
}

struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn number(&mut self, n: u64) {
        self.bytes(&n.to_le_bytes());
    }

    /// Length first, so `ab` + `c` and `a` + `bc` differ.
    fn text(&mut self, text: &str) {
        self.number(text.len() as u64);
        self.bytes(text.as_bytes());
    }
}

#[cfg(test)]
mod tests;

//! Write mailflow collector plugins in safe Rust.
//!
//! A plugin implements [`Collector`] and exports it with [`export_collector!`]; built as a
//! `cdylib`, it is loaded by a `[[collector]] type = "plugin"` section. The SDK speaks the C ABI
//! of `mailflow-plugin-abi` for it: settings arrive already deserialized, events leave as
//! [`MessageEvent`]s, and every exported function runs under `catch_unwind`, so an error or a
//! panic becomes a status code and a message that mailflow shows with the plugin's name, never
//! an abort of the host.
//!
//! The plugin and mailflow need not be built by the same compiler: only C types cross.
//!
//! ```
//! use mailflow_plugin_sdk::{Batch, Collector, Direction, Error, Host, MessageEvent, Range, TlsVersion, export_collector};
//!
//! #[derive(serde::Deserialize)]
//! struct Settings {
//!     host: String,
//! }
//!
//! struct Appliance {
//!     settings: Settings,
//!     host: Host,
//!     range: Option<Range>,
//! }
//!
//! impl Collector for Appliance {
//!     const NAME: &'static std::ffi::CStr = c"appliance";
//!     type Settings = Settings;
//!
//!     fn create(settings: Settings, host: Host) -> Result<Self, Error> {
//!         Ok(Appliance { settings, host, range: None })
//!     }
//!
//!     fn open_range(&mut self, range: Range) -> Result<(), Error> {
//!         self.range = Some(range);
//!         Ok(())
//!     }
//!
//!     /// Fills one batch; returns whether more follow.
//!     fn next_batch(&mut self, batch: &mut Batch) -> Result<bool, Error> {
//!         self.host.info(&format!("asking {}", self.settings.host));
//!         let mut event = MessageEvent::new(self.range.unwrap().start, Direction::Inbound);
//!         event.tls.version = Some(TlsVersion::Tls1_3);
//!         batch.push(&event);
//!         Ok(false)
//!     }
//! }
//!
//! export_collector!(Appliance);
//! ```
//!
//! # Layout
//! - [`Collector`], [`Batch`], [`Host`], [`Range`]: what a plugin author uses.
//! - [`export_collector!`] and the hidden `ffi` module: the exported C functions.

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

pub use mailflow_core::{Direction, Evidence, MessageEvent, Peer, Status, Tls, TlsVersion, Trust};
pub use mailflow_plugin_abi as abi;

/// What a plugin's functions may fail with; its `Display` is what mailflow shows.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A source of message events, run by mailflow in-process.
///
/// mailflow calls `create` once per run, then `open_range`, then `next_batch` until it returns
/// `Ok(false)`, all from one thread; then it drops the value.
pub trait Collector: Sized + 'static {
    /// The name mailflow shows in messages about this plugin.
    const NAME: &'static CStr;
    /// The collector section's `settings` table.
    type Settings: DeserializeOwned;

    fn create(settings: Self::Settings, host: Host) -> Result<Self, Error>;
    /// The instants wanted. Events outside are dropped by mailflow, so this is a hint.
    fn open_range(&mut self, range: Range) -> Result<(), Error>;
    /// Adds the next events to `batch`; returns whether more batches follow. A batch should
    /// stop growing once [`Batch::is_full`] says so.
    fn next_batch(&mut self, batch: &mut Batch) -> Result<bool, Error>;
}

/// The instants wanted, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Events on their way to mailflow, as canonical JSON Lines.
#[derive(Debug, Default)]
pub struct Batch {
    lines: Vec<u8>,
    events: usize,
}

impl Batch {
    /// Past this many bytes a batch is full: large enough to make calls cheap, small enough to
    /// keep memory flat.
    pub const FULL_BYTES: usize = 1 << 20;

    pub fn push(&mut self, event: &MessageEvent) {
        serde_json::to_writer(&mut self.lines, event).expect("an event serializes to JSON");
        self.lines.push(b'\n');
        self.events += 1;
    }

    /// Says that the record at `at` (e.g. `file:line`) of the plugin's source could not be
    /// read, and why: mailflow counts it as skipped and shows `at` and `why` with the first few.
    pub fn skip(&mut self, at: &str, why: &str) {
        let record = serde_json::json!({ "mailflow_skip": { "at": at, "why": why } });
        serde_json::to_writer(&mut self.lines, &record).expect("a skip record serializes to JSON");
        self.lines.push(b'\n');
    }

    /// Adds a line of canonical JSON as it is, for sources that already hold events in that
    /// form. mailflow checks it as it checks every event, and skips it if malformed.
    pub fn push_json_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        self.lines.extend(line.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
        self.lines.push(b'\n');
        self.events += 1;
    }

    pub fn len(&self) -> usize {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    pub fn is_full(&self) -> bool {
        self.lines.len() >= Self::FULL_BYTES
    }
}

/// mailflow's side of the plugin: its log. Cheap to copy; usable from any thread while the
/// collector lives.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    raw: abi::MailflowHost,
}

// The host promises that its context and callbacks are thread-safe (see `MailflowHost`).
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

impl Host {
    pub fn log(&self, level: u32, message: &str) {
        if let Some(log) = self.raw.log {
            // SAFETY: the host keeps `context` valid while the instance lives.
            unsafe { log(self.raw.context, level, message.as_ptr(), message.len()) }
        }
    }

    pub fn error(&self, message: &str) {
        self.log(abi::MAILFLOW_LOG_ERROR, message)
    }

    pub fn warn(&self, message: &str) {
        self.log(abi::MAILFLOW_LOG_WARN, message)
    }

    pub fn info(&self, message: &str) {
        self.log(abi::MAILFLOW_LOG_INFO, message)
    }

    pub fn debug(&self, message: &str) {
        self.log(abi::MAILFLOW_LOG_DEBUG, message)
    }
}

/// Exports `$collector` (a type implementing [`Collector`]) as a mailflow plugin: defines the
/// two C symbols mailflow looks up. Use it once per library.
#[macro_export]
macro_rules! export_collector {
    ($collector:ty) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn mailflow_plugin_abi_version() -> u32 {
            $crate::abi::MAILFLOW_PLUGIN_ABI_VERSION
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn mailflow_plugin_v1() -> *const $crate::abi::MailflowPluginV1 {
            static TABLE: $crate::abi::MailflowPluginV1 = $crate::ffi::table::<$collector>();
            &TABLE
        }
    };
}

/// The C functions behind [`export_collector!`]; not for direct use.
#[doc(hidden)]
pub mod ffi {
    use std::ffi::{c_char, c_void};

    use super::*;
    use abi::{MailflowBuffer, MailflowHost, MailflowPluginV1};

    pub const fn table<C: Collector>() -> MailflowPluginV1 {
        MailflowPluginV1 {
            size: size_of::<MailflowPluginV1>(),
            name: Some(name::<C>),
            create: Some(create::<C>),
            open_range: Some(open_range::<C>),
            next_batch: Some(next_batch::<C>),
            free_buffer: Some(free_buffer),
            destroy: Some(destroy::<C>),
        }
    }

    unsafe extern "C" fn name<C: Collector>() -> *const c_char {
        C::NAME.as_ptr()
    }

    unsafe extern "C" fn create<C: Collector>(
        host: *const MailflowHost,
        settings_json: *const u8,
        settings_len: usize,
        instance: *mut *mut c_void,
        error: *mut MailflowBuffer,
    ) -> i32 {
        guard(error, || {
            if host.is_null() || instance.is_null() {
                return Err("create was called without a host or a place for the instance".into());
            }
            // SAFETY: the host passes a valid host struct and `settings_len` readable bytes.
            let host = Host { raw: unsafe { known_fields(host) } };
            let settings = unsafe { bytes(settings_json, settings_len) };
            let settings: C::Settings = serde_json::from_slice(settings)
                .map_err(|e| format!("the plugin's settings are not valid: {}", without_values(&e.to_string())))?;
            let collector = C::create(settings, host)?;
            // SAFETY: checked non-null above; the host owns the slot.
            unsafe { *instance = Box::into_raw(Box::new(collector)).cast() };
            Ok(abi::MAILFLOW_OK)
        })
    }

    unsafe extern "C" fn open_range<C: Collector>(
        instance: *mut c_void,
        start_ms: i64,
        end_ms: i64,
        error: *mut MailflowBuffer,
    ) -> i32 {
        guard(error, || {
            // SAFETY: `instance` is what `create` made, used by one thread at a time.
            let collector =
                unsafe { instance.cast::<C>().as_mut() }.ok_or("open_range was called without an instance")?;
            let instant = |ms| DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("{ms} ms is not a time"));
            collector.open_range(Range { start: instant(start_ms)?, end: instant(end_ms)? })?;
            Ok(abi::MAILFLOW_OK)
        })
    }

    unsafe extern "C" fn next_batch<C: Collector>(
        instance: *mut c_void,
        batch: *mut MailflowBuffer,
        error: *mut MailflowBuffer,
    ) -> i32 {
        guard(error, || {
            // SAFETY: as in `open_range`.
            let collector =
                unsafe { instance.cast::<C>().as_mut() }.ok_or("next_batch was called without an instance")?;
            if batch.is_null() {
                return Err("next_batch was called without a place for the batch".into());
            }
            let mut events = Batch::default();
            let more = collector.next_batch(&mut events)?;
            // SAFETY: checked non-null above.
            unsafe { *batch = into_buffer(events.lines) };
            Ok(if more { abi::MAILFLOW_OK } else { abi::MAILFLOW_DONE })
        })
    }

    unsafe extern "C" fn free_buffer(buffer: MailflowBuffer) {
        if !buffer.data.is_null() {
            // SAFETY: made by `into_buffer` from a boxed slice of exactly `len` bytes.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buffer.data, buffer.len)) });
        }
    }

    unsafe extern "C" fn destroy<C: Collector>(instance: *mut c_void) {
        if !instance.is_null() {
            // A panic in `drop` has nowhere to go but must not cross the boundary.
            // SAFETY: made by `create` with `Box::into_raw`; the host destroys it once.
            let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(instance.cast::<C>()) })));
        }
    }

    /// Runs `call`, turning an error or a panic into a status code and a message. Describing
    /// the error runs its `Display` and drops it: plugin code, which may panic too.
    fn guard(error: *mut MailflowBuffer, call: impl FnOnce() -> Result<i32, Error>) -> i32 {
        let outcome = catch_unwind(AssertUnwindSafe(call));
        let described = catch_unwind(AssertUnwindSafe(move || match outcome {
            Ok(Ok(status)) => (status, None),
            Ok(Err(e)) => (abi::MAILFLOW_ERROR, Some(e.to_string())),
            Err(panic) => (abi::MAILFLOW_PANIC, Some(panic_message(&*panic).to_owned())),
        }));
        let (status, message) = described.unwrap_or_else(|panic| {
            // Its drop might panic as well, with nowhere to go.
            std::mem::forget(panic);
            (abi::MAILFLOW_PANIC, Some("panicked while describing an error".to_owned()))
        });
        if let Some(message) = message
            && !error.is_null()
        {
            // SAFETY: the host passes a writable buffer slot.
            unsafe { *error = into_buffer(message.into_bytes()) };
        }
        status
    }

    /// The host's struct, of which only the first `size` bytes exist (a host older than this SDK
    /// may know fewer fields); absent fields are null.
    ///
    /// # Safety
    /// `host` points at a `MailflowHost` at least `size` bytes long.
    unsafe fn known_fields(host: *const MailflowHost) -> MailflowHost {
        let mut known = MailflowHost { size: 0, context: std::ptr::null_mut(), log: None };
        // SAFETY: `size` is the first field of every version.
        let size = unsafe { host.cast::<usize>().read() }.min(size_of::<MailflowHost>());
        // SAFETY: both hold at least `size` bytes; fields are copied whole or not at all, since a
        // host sets `size` to the end of a field.
        unsafe { std::ptr::copy_nonoverlapping(host.cast::<u8>(), (&raw mut known).cast::<u8>(), size) };
        known
    }

    /// serde's message without the values it quotes: settings may hold secrets, and the message
    /// ends up in logs and reports. `invalid type: string "s3cr3t", expected u32` becomes
    /// `invalid type: string, expected u32`.
    pub(crate) fn without_values(message: &str) -> String {
        const VALUE_KINDS: [&str; 6] = ["string ", "integer ", "floating point ", "character ", "variant ", "bytes "];
        let mut kept = String::with_capacity(message.len());
        let mut rest = message;
        while let Some(open) = rest.find(['"', '`']) {
            let quote = rest.as_bytes()[open] as char;
            let Some(close) = rest[open + 1..].find(quote).map(|i| open + 1 + i) else { break };
            let before = &rest[..open];
            match VALUE_KINDS.iter().find(|kind| before.ends_with(*kind)) {
                Some(_) => kept.push_str(before.trim_end()),
                None => kept.push_str(&rest[..=close]),
            }
            rest = &rest[close + 1..];
        }
        kept.push_str(rest);
        kept
    }

    fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
        panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic without a message")
    }

    fn into_buffer(bytes: Vec<u8>) -> MailflowBuffer {
        if bytes.is_empty() {
            return MailflowBuffer::EMPTY;
        }
        let len = bytes.len();
        MailflowBuffer { data: Box::into_raw(bytes.into_boxed_slice()).cast(), len }
    }

    /// # Safety
    /// `data` is null or points at `len` readable bytes.
    unsafe fn bytes<'a>(data: *const u8, len: usize) -> &'a [u8] {
        match len {
            _ if data.is_null() => &[],
            0 => &[],
            // SAFETY: as the caller promises.
            _ => unsafe { std::slice::from_raw_parts(data, len) },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::c_void;
    use std::sync::Mutex;

    use super::*;
    use abi::{MAILFLOW_DONE, MAILFLOW_ERROR, MAILFLOW_OK, MAILFLOW_PANIC, MailflowBuffer, MailflowHost};

    #[derive(serde::Deserialize)]
    struct Settings {
        events: usize,
        fail: Option<String>,
    }

    /// Sends `events` events one per batch; `fail` names the call that fails (or panics).
    struct Counter {
        settings: Settings,
        host: Host,
        sent: usize,
        start: Option<DateTime<Utc>>,
    }

    impl Collector for Counter {
        const NAME: &'static CStr = c"counter";
        type Settings = Settings;

        fn create(settings: Settings, host: Host) -> Result<Self, Error> {
            match settings.fail.as_deref() {
                Some("create") => Err("no such log folder".into()),
                Some("create-panic") => panic!("bad state"),
                _ => Ok(Counter { settings, host, sent: 0, start: None }),
            }
        }

        fn open_range(&mut self, range: Range) -> Result<(), Error> {
            self.start = Some(range.start);
            Ok(())
        }

        fn next_batch(&mut self, batch: &mut Batch) -> Result<bool, Error> {
            if self.settings.fail.as_deref() == Some("next-panic") {
                panic!("index {} out of range", self.sent);
            }
            self.host.info("batch");
            if self.sent < self.settings.events {
                self.sent += 1;
                batch.push(&MessageEvent::new(self.start.unwrap(), Direction::Inbound));
            }
            Ok(self.sent < self.settings.events)
        }
    }

    static LOGGED: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

    unsafe extern "C" fn log(_: *mut c_void, level: u32, message: *const u8, len: usize) {
        let text = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(message, len) }).into_owned();
        LOGGED.lock().unwrap().push((level, text));
    }

    const TABLE: abi::MailflowPluginV1 = ffi::table::<Counter>();

    fn create(settings: &str) -> (i32, *mut c_void, String) {
        let host = MailflowHost { size: size_of::<MailflowHost>(), context: std::ptr::null_mut(), log: Some(log) };
        let (mut instance, mut error) = (std::ptr::null_mut(), MailflowBuffer::EMPTY);
        let status =
            unsafe { TABLE.create.unwrap()(&host, settings.as_ptr(), settings.len(), &mut instance, &mut error) };
        (status, instance, take(error))
    }

    fn take(buffer: MailflowBuffer) -> String {
        let text = match buffer.len {
            0 => String::new(),
            len => String::from_utf8(unsafe { std::slice::from_raw_parts(buffer.data, len) }.to_vec()).unwrap(),
        };
        unsafe { TABLE.free_buffer.unwrap()(buffer) };
        text
    }

    #[test]
    fn batches_arrive_as_json_lines_until_done() {
        let (status, instance, _) = create(r#"{"events": 2}"#);
        assert_eq!(status, MAILFLOW_OK);
        let mut error = MailflowBuffer::EMPTY;
        assert_eq!(unsafe { TABLE.open_range.unwrap()(instance, 1_764_806_400_000, 1_764_892_800_000, &mut error) }, 0);
        let mut statuses = Vec::new();
        let mut text = String::new();
        loop {
            let mut batch = MailflowBuffer::EMPTY;
            let status = unsafe { TABLE.next_batch.unwrap()(instance, &mut batch, &mut error) };
            statuses.push(status);
            text += &take(batch);
            if status != MAILFLOW_OK {
                break;
            }
        }
        unsafe { TABLE.destroy.unwrap()(instance) };
        assert_eq!(statuses, [MAILFLOW_OK, MAILFLOW_DONE]);
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(r#"{"time":"2025-12-04T00:00:00Z","direction":"inbound""#), "{text}");
        assert!(LOGGED.lock().unwrap().contains(&(abi::MAILFLOW_LOG_INFO, "batch".into())));
    }

    #[test]
    fn errors_and_panics_become_status_codes_with_messages() {
        assert_eq!(
            create(r#"{"events": 1, "fail": "create"}"#),
            (MAILFLOW_ERROR, std::ptr::null_mut(), "no such log folder".into())
        );
        let (status, _, message) = create(r#"{"events": 1, "fail": "create-panic"}"#);
        assert_eq!((status, message.as_str()), (MAILFLOW_PANIC, "bad state"));
        let (status, _, message) = create(r#"{"event": 1}"#);
        assert_eq!(status, MAILFLOW_ERROR);
        assert!(message.starts_with("the plugin's settings are not valid: missing field `events`"), "{message}");

        let (_, instance, _) = create(r#"{"events": 1, "fail": "next-panic"}"#);
        let (mut batch, mut error) = (MailflowBuffer::EMPTY, MailflowBuffer::EMPTY);
        assert_eq!(unsafe { TABLE.next_batch.unwrap()(instance, &mut batch, &mut error) }, MAILFLOW_PANIC);
        assert_eq!(take(error), "index 0 out of range");
        unsafe { TABLE.destroy.unwrap()(instance) };
    }

    #[test]
    fn settings_errors_never_quote_a_value() {
        let (status, _, message) = create(r#"{"events": "hunter2-secret"}"#);
        assert_eq!(status, MAILFLOW_ERROR);
        assert_eq!(
            message,
            "the plugin's settings are not valid: invalid type: string, expected usize at line 1 column 27"
        );
        assert_eq!(
            ffi::without_values(
                "unknown variant `s3cret`, expected `a` or `b`; missing field `events`; integer `70000`"
            ),
            "unknown variant, expected `a` or `b`; missing field `events`; integer"
        );
    }

    #[test]
    fn lines_pushed_as_they_are_stay_one_line_each() {
        let mut batch = Batch::default();
        batch.push_json_line(b"{\"a\":\n1}\n");
        batch.push_json_line(b"garbage");
        batch.skip("x.log:3", "no \"date\"\n");
        assert_eq!(
            batch.lines,
            b"{\"a\": 1}\ngarbage\n{\"mailflow_skip\":{\"at\":\"x.log:3\",\"why\":\"no \\\"date\\\"\\n\"}}\n"
        );
        assert_eq!(batch.len(), 2);
    }
}

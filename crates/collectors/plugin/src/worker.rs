//! The thread that makes a plugin's calls, so that the collector can stop waiting for a call
//! that does not return. It sends each batch, copied out of the plugin's buffer, as it comes.

use std::ffi::{CString, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use mailflow_plugin_abi::{
    MAILFLOW_DONE, MAILFLOW_ERROR, MAILFLOW_OK, MAILFLOW_PANIC, MailflowBuffer, MailflowFreeBufferFn, MailflowHost,
};

use crate::library::{self, Plugin};

pub enum Message {
    Batch(Vec<u8>),
    Done,
    /// A call failed; the text says which and why.
    Failed(String),
}

/// A run of the plugin on its thread. Dropping it tells the thread to stop at its next call.
pub struct Run {
    pub messages: mpsc::Receiver<Message>,
    stop: Arc<AtomicBool>,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts the plugin's thread: create, open the range `(start_ms, end_ms)`, send batches until
/// done or told to stop, destroy. `busy` is set while a thread of this collector runs: a call
/// left running by an earlier run (that timed out) must return before the next run starts, so
/// that runs never pile up. Returns `None` when it has not.
pub fn start(
    plugin: Plugin,
    settings: CString,
    range: (i64, i64),
    busy: &Arc<AtomicBool>,
) -> std::io::Result<Option<Run>> {
    if busy.swap(true, Ordering::AcqRel) {
        return Ok(None);
    }
    let busy = Busy(Arc::clone(busy));
    let stop = Arc::new(AtomicBool::new(false));
    // Two batches in flight: the plugin reads ahead while the host checks events.
    let (sender, receiver) = mpsc::sync_channel(2);
    let thread_stop = Arc::clone(&stop);
    std::thread::Builder::new().name(format!("plugin {}", plugin.name)).spawn(move || {
        let _busy = busy;
        run(&plugin, &settings, range, &sender, &thread_stop)
    })?;
    Ok(Some(Run { messages: receiver, stop }))
}

/// Clears the collector's `busy` flag when the thread ends, however it ends.
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn run(plugin: &Plugin, settings: &CString, range: (i64, i64), sender: &mpsc::SyncSender<Message>, stop: &AtomicBool) {
    let (Some(create), Some(destroy)) = (plugin.table.create, plugin.table.destroy) else {
        unreachable!("library::load checks that every function is set")
    };
    let host = MailflowHost {
        size: size_of::<MailflowHost>(),
        context: std::ptr::from_ref(plugin.log).cast_mut().cast(),
        log: Some(library::log),
    };
    let mut instance: *mut c_void = std::ptr::null_mut();
    let mut error = MailflowBuffer::EMPTY;
    let settings = settings.as_bytes();
    // SAFETY: arguments as the ABI describes them; `settings` is followed by its NUL.
    let status = unsafe { create(&host, settings.as_ptr(), settings.len(), &mut instance, &mut error) };
    let last = match check("create", status, error, plugin.table.free_buffer) {
        Err(why) => return drop(sender.send(Message::Failed(why))),
        Ok(_) => send_batches(plugin, instance, range, sender, stop),
    };
    let _ = sender.send(last);
    // SAFETY: made by `create`, destroyed once, after its last call.
    unsafe { destroy(instance) };
}

/// Opens the range and sends batches until the plugin is done, fails, or the receiver stops
/// listening; returns the last message to send.
fn send_batches(
    plugin: &Plugin,
    instance: *mut c_void,
    (start_ms, end_ms): (i64, i64),
    sender: &mpsc::SyncSender<Message>,
    stop: &AtomicBool,
) -> Message {
    let table = &plugin.table;
    let (Some(open_range), Some(next_batch)) = (table.open_range, table.next_batch) else {
        unreachable!("library::load checks that every function is set")
    };
    let mut error = MailflowBuffer::EMPTY;
    // SAFETY: `instance` is what `create` made; calls come from this thread only.
    let status = unsafe { open_range(instance, start_ms, end_ms, &mut error) };
    if let Err(why) = check("open_range", status, error, table.free_buffer) {
        return Message::Failed(why);
    }
    // The collector may have stopped listening (its time was up) while batches were empty.
    while !stop.load(Ordering::Relaxed) {
        let (mut batch, mut error) = (MailflowBuffer::EMPTY, MailflowBuffer::EMPTY);
        // SAFETY: as above.
        let status = unsafe { next_batch(instance, &mut batch, &mut error) };
        let status = match check("next_batch", status, error, table.free_buffer) {
            Ok(status) => status,
            Err(why) => {
                // A failed call's batch is freed and not read.
                give_back(batch, table.free_buffer);
                return Message::Failed(why);
            }
        };
        let events = take(batch, table.free_buffer);
        if !events.is_empty() && sender.send(Message::Batch(events)).is_err() {
            return Message::Done;
        }
        if status == MAILFLOW_DONE {
            return Message::Done;
        }
    }
    Message::Done
}

/// `Ok` for the success codes, else the plugin's message (freed here) with the call named.
fn check(call: &str, status: i32, error: MailflowBuffer, free_buffer: MailflowFreeBufferFn) -> Result<i32, String> {
    let message = take(error, free_buffer);
    let said = |what: &str| match String::from_utf8_lossy(&message).trim() {
        "" => format!("{what} (the plugin gave no message)"),
        text => format!("{what}: {text}"),
    };
    match status {
        MAILFLOW_OK | MAILFLOW_DONE => Ok(status),
        MAILFLOW_ERROR => Err(said(&format!("{call} failed"))),
        MAILFLOW_PANIC => Err(said(&format!("panicked in {call}"))),
        other => Err(said(&format!("{call} returned {other}, which is no status of ABI version 1"))),
    }
}

/// Copies a buffer the plugin handed out, then gives it back to be freed.
fn take(buffer: MailflowBuffer, free_buffer: MailflowFreeBufferFn) -> Vec<u8> {
    if buffer.data.is_null() {
        return Vec::new();
    }
    // SAFETY: the plugin hands out `len` readable bytes and keeps them until `free_buffer`.
    let bytes = unsafe { std::slice::from_raw_parts(buffer.data, buffer.len) }.to_vec();
    give_back(buffer, free_buffer);
    bytes
}

/// Gives a buffer the plugin handed out back to it, to be freed.
fn give_back(buffer: MailflowBuffer, free_buffer: MailflowFreeBufferFn) {
    if let (false, Some(free_buffer)) = (buffer.data.is_null(), free_buffer) {
        // SAFETY: handed back once, as the plugin gave it.
        unsafe { free_buffer(buffer) };
    }
}

//! The thread that makes a plugin's calls, so that the collector can stop waiting for a call
//! that does not return. It sends each batch, copied out of the plugin's buffer, as it comes.

use std::ffi::{CString, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use mailflow_plugin_abi::{
    MAILFLOW_DONE, MAILFLOW_ERROR, MAILFLOW_LOG_DEBUG, MAILFLOW_LOG_ERROR, MAILFLOW_LOG_INFO, MAILFLOW_LOG_WARN,
    MAILFLOW_OK, MAILFLOW_PANIC, MailflowBuffer, MailflowFreeBufferFn, MailflowHost,
};

use crate::library::Plugin;

pub enum Message {
    Batch(Vec<u8>),
    Done,
    /// A call failed; the text says which and why.
    Failed(String),
}

/// Starts the plugin's thread: create, open the range `(start_ms, end_ms)`, send batches until
/// done, destroy. The receiver may stop listening at any time; the thread then finishes the
/// call it is in, destroys the instance and ends.
pub fn start(plugin: Plugin, settings: CString, range: (i64, i64)) -> std::io::Result<mpsc::Receiver<Message>> {
    // Two batches in flight: the plugin reads ahead while the host checks events.
    let (sender, receiver) = mpsc::sync_channel(2);
    std::thread::Builder::new()
        .name(format!("plugin {}", plugin.name))
        .spawn(move || run(&plugin, &settings, range, &sender))?;
    Ok(receiver)
}

fn run(plugin: &Plugin, settings: &CString, range: (i64, i64), sender: &mpsc::SyncSender<Message>) {
    let (Some(create), Some(destroy)) = (plugin.table.create, plugin.table.destroy) else {
        unreachable!("library::load checks that every function is set")
    };
    // Lives until the thread ends, after `destroy`, as the ABI promises.
    let context = LogContext { plugin: plugin.name.to_string() };
    let host = MailflowHost {
        size: size_of::<MailflowHost>(),
        context: (&raw const context).cast_mut().cast(),
        log: Some(log),
    };
    let mut instance: *mut c_void = std::ptr::null_mut();
    let mut error = MailflowBuffer::EMPTY;
    let settings = settings.as_bytes();
    // SAFETY: arguments as the ABI describes them; `settings` is followed by its NUL.
    let status = unsafe { create(&host, settings.as_ptr(), settings.len(), &mut instance, &mut error) };
    let last = match check("create", status, error, plugin.table.free_buffer) {
        Err(why) => return drop(sender.send(Message::Failed(why))),
        Ok(_) => send_batches(plugin, instance, range, sender),
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
    loop {
        let (mut batch, mut error) = (MailflowBuffer::EMPTY, MailflowBuffer::EMPTY);
        // SAFETY: as above.
        let status = unsafe { next_batch(instance, &mut batch, &mut error) };
        // A failed call's batch is freed and not read.
        let events = take(batch, table.free_buffer);
        match check("next_batch", status, error, table.free_buffer) {
            Err(why) => return Message::Failed(why),
            Ok(status) => {
                if !events.is_empty() && sender.send(Message::Batch(events)).is_err() {
                    return Message::Done;
                }
                if status == MAILFLOW_DONE {
                    return Message::Done;
                }
            }
        }
    }
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
    if let Some(free_buffer) = free_buffer {
        // SAFETY: handed back once, as the plugin gave it.
        unsafe { free_buffer(buffer) };
    }
    bytes
}

struct LogContext {
    plugin: String,
}

/// The host's log callback: a plugin's message goes to tracing under the plugin's name.
unsafe extern "C" fn log(context: *mut c_void, level: u32, message: *const u8, len: usize) {
    // Nothing may unwind into the plugin.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `context` is the `LogContext` of this plugin's thread, alive until after
        // `destroy`; `message` is `len` readable bytes.
        let Some(context) = (unsafe { context.cast::<LogContext>().as_ref() }) else { return };
        if message.is_null() {
            return;
        }
        let text = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(message, len) });
        let plugin = context.plugin.as_str();
        match level {
            MAILFLOW_LOG_ERROR => tracing::error!(plugin, "{text}"),
            MAILFLOW_LOG_WARN => tracing::warn!(plugin, "{text}"),
            MAILFLOW_LOG_INFO => tracing::info!(plugin, "{text}"),
            MAILFLOW_LOG_DEBUG => tracing::debug!(plugin, "{text}"),
            _ => tracing::trace!(plugin, "{text}"),
        }
    }));
}

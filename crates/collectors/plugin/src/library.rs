//! Loading a plugin library and checking, before calling anything but the version function,
//! that it is a mailflow plugin of an ABI this host speaks.

use std::ffi::{CStr, c_void};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use libloading::Library;
use mailflow_plugin_abi::{
    ABI_VERSION_SYMBOL, ENTRY_SYMBOL, MAILFLOW_LOG_DEBUG, MAILFLOW_LOG_ERROR, MAILFLOW_LOG_INFO, MAILFLOW_LOG_WARN,
    MAILFLOW_PLUGIN_ABI_VERSION, MailflowPluginV1,
};

/// A loaded plugin whose table has every function set.
#[derive(Clone)]
pub struct Plugin {
    pub name: Arc<str>,
    pub path: Arc<Path>,
    pub table: MailflowPluginV1,
    /// The host's side of the log callback. Leaked with the library: a plugin may log from a
    /// thread of its own at any time, even after `destroy`.
    pub log: &'static LogContext,
}

/// What the log callback needs: the plugin's name and the log (tracing's dispatcher) that was
/// current when the library was loaded, so its messages land where mailflow's do from any thread.
pub struct LogContext {
    plugin: Box<str>,
    dispatch: tracing::Dispatch,
}

/// The host's log callback: a plugin's message goes to tracing under the plugin's name.
pub unsafe extern "C" fn log(context: *mut c_void, level: u32, message: *const u8, len: usize) {
    // Nothing may unwind into the plugin.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `context` is a leaked `LogContext`; `message` is `len` readable bytes.
        let Some(context) = (unsafe { context.cast::<LogContext>().as_ref() }) else { return };
        if message.is_null() {
            return;
        }
        let text = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(message, len) });
        let plugin = &*context.plugin;
        tracing::dispatcher::with_default(&context.dispatch, || match level {
            MAILFLOW_LOG_ERROR => tracing::error!(plugin, "{text}"),
            MAILFLOW_LOG_WARN => tracing::warn!(plugin, "{text}"),
            MAILFLOW_LOG_INFO => tracing::info!(plugin, "{text}"),
            MAILFLOW_LOG_DEBUG => tracing::debug!(plugin, "{text}"),
            _ => tracing::trace!(plugin, "{text}"),
        });
    }));
}

impl fmt::Display for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin \"{}\" ({})", self.name, self.path.display())
    }
}

pub fn load(path: &Path) -> Result<Plugin, String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("plugin library {shown} does not exist; build the plugin or correct `path`"));
        }
        Err(e) => return Err(format!("plugin library {shown}: {e}")),
        Ok(meta) if !meta.is_file() => return Err(format!("plugin library {shown} is not a file")),
        Ok(_) => {}
    }
    // SAFETY: loading runs the library's initializers. That is the trust a plugin asks for, and
    // the path comes from the config, never from input data.
    let library = unsafe { open(path) }
        .map_err(|e| format!("{shown} is not a library this system can load: {}", libloading_reason(&e)))?;
    // Never unloaded: a plugin's threads or log calls may outlive its instance.
    let library: &'static Library = Box::leak(Box::new(library));
    let not_a_plugin = |symbol: &str| {
        format!(
            "{shown} is not a mailflow plugin: it exports no `{symbol}` function \
             (Rust plugins export it with mailflow_plugin_sdk::export_collector!; see docs/plugins.md)"
        )
    };

    // SAFETY: the ABI fixes this symbol's type.
    let version = unsafe { library.get::<unsafe extern "C" fn() -> u32>(ABI_VERSION_SYMBOL.as_bytes()) }
        .map_err(|_| not_a_plugin(ABI_VERSION_SYMBOL))?;
    let version = unsafe { version() };
    if version != MAILFLOW_PLUGIN_ABI_VERSION {
        return Err(format!(
            "{shown} is built for plugin ABI version {version}, but this mailflow speaks version \
             {MAILFLOW_PLUGIN_ABI_VERSION}; rebuild the plugin against this release's mailflow-plugin-sdk or mailflow_plugin.h"
        ));
    }
    // SAFETY: the ABI version says this symbol's type.
    let entry = unsafe { library.get::<unsafe extern "C" fn() -> *const MailflowPluginV1>(ENTRY_SYMBOL.as_bytes()) }
        .map_err(|_| not_a_plugin(ENTRY_SYMBOL))?;
    let table = unsafe { entry() };
    if table.is_null() {
        return Err(format!("{shown}: `{ENTRY_SYMBOL}` returned no function table"));
    }
    // SAFETY: v1 promises the table starts with its size; read that alone before trusting more.
    let size = unsafe { table.cast::<usize>().read() };
    if size < size_of::<MailflowPluginV1>() {
        return Err(format!(
            "{shown}: its function table is {size} bytes, but version {MAILFLOW_PLUGIN_ABI_VERSION} needs {}; \
             the plugin's header or SDK does not match its ABI version",
            size_of::<MailflowPluginV1>()
        ));
    }
    // SAFETY: at least as large as the struct; lives as long as the library, which is forever.
    let table = unsafe { table.read() };
    let functions = [
        ("name", table.name.is_some()),
        ("create", table.create.is_some()),
        ("open_range", table.open_range.is_some()),
        ("next_batch", table.next_batch.is_some()),
        ("free_buffer", table.free_buffer.is_some()),
        ("destroy", table.destroy.is_some()),
    ];
    if let Some((function, _)) = functions.iter().find(|(_, set)| !set) {
        return Err(format!("{shown}: its function table has no `{function}` function"));
    }
    // SAFETY: the ABI says `name` returns a static NUL-terminated string (or null).
    let name = table.name.map(|name| unsafe { name() }).filter(|p| !p.is_null());
    let name = name.map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().trim().to_owned());
    let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| file_stem(path));
    let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
    let log = Box::leak(Box::new(LogContext { plugin: name.as_str().into(), dispatch }));
    Ok(Plugin { name: name.into(), path: Arc::from(path), table, log })
}
/// Resolves every symbol now (`RTLD_NOW`), so that a plugin that needs a function the system
/// lacks fails here with the loader's words, not in the middle of a run with the process.
/// `RTLD_LOCAL` keeps one plugin's symbols from standing in for another's.
#[cfg(unix)]
unsafe fn open(path: &Path) -> Result<Library, libloading::Error> {
    use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};
    unsafe { UnixLibrary::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(Library::from)
}

#[cfg(not(unix))]
unsafe fn open(path: &Path) -> Result<Library, libloading::Error> {
    unsafe { Library::new(path) }
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned())
}

/// The loader's own words (`dlerror`), which name the real problem: "invalid ELF header",
/// "wrong ELF class", a missing dependency.
fn libloading_reason(e: &libloading::Error) -> String {
    match e {
        libloading::Error::DlOpen { desc } => format!("{desc:?}").trim_matches('"').to_string(),
        other => other.to_string(),
    }
}

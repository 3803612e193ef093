//! A progress bar for long collections: bytes read of bytes to read (and API calls made of calls
//! planned, for sources that read APIs), drawn on stderr only when it is a terminal and the run
//! takes long enough to need one, then the throughput.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mailflow_runner::Pipeline;

/// Runs `collect`, drawing the pipeline's reading progress meanwhile.
pub fn while_collecting<T: Send>(pipeline: &Pipeline, quiet: bool, collect: impl FnOnce() -> T + Send) -> T {
    if quiet || !std::io::stderr().is_terminal() {
        return collect();
    }
    let progress = pipeline.progress();
    let began = Instant::now();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {wide_bar} {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = std::thread::scope(|scope| {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        scope.spawn(move || {
            // Short runs draw nothing.
            while done_rx.recv_timeout(Duration::from_millis(100)).is_err() {
                if began.elapsed() >= Duration::from_millis(500) {
                    let (read, total) = progress.get();
                    let (calls, planned) = progress.calls();
                    let mut parts = Vec::new();
                    if total > 0 {
                        parts.push(format!("reading {}/{}", HumanBytes(read), HumanBytes(total)));
                    }
                    if planned > 0 {
                        parts.push(format!("API calls {calls}/{planned}"));
                    }
                    bar.set_message(parts.join(", "));
                    // API calls are paced to minutes each when there are many: they set the time left.
                    let (done, of) = if planned > 0 { (calls, planned) } else { (read, total) };
                    bar.set_length(of.max(done));
                    bar.set_position(done);
                }
            }
            bar.finish_and_clear();
        });
        let result = collect();
        let _ = done_tx.send(());
        result
    });
    let (read, _) = progress.get();
    let elapsed = began.elapsed();
    if elapsed >= Duration::from_secs(1) && read > 0 {
        let rate = read as f64 / elapsed.as_secs_f64();
        eprintln!("read {} in {:.1} s ({}/s)", HumanBytes(read), elapsed.as_secs_f64(), HumanBytes(rate as u64));
    }
    result
}

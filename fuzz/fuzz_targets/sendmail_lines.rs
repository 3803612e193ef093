//! Arbitrary bytes as a Sendmail log, through the whole collector: every line form, correlation,
//! event building. Run: `cargo fuzz run sendmail_lines fuzz/corpus/sendmail_lines`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailflow_component::Emitter;

fuzz_target!(|data: &[u8]| {
    let mut sink = |_| {};
    let mut out = Emitter::new(&mut sink);
    mailflow_collector_sendmail::collect_text(data, &mut out);
});

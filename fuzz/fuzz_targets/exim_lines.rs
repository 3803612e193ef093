//! Arbitrary bytes as an Exim main log, through the whole collector: every line form, correlation,
//! event building. Run: `cargo fuzz run exim_lines fuzz/corpus/exim_lines`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailflow_component::Emitter;

fuzz_target!(|data: &[u8]| {
    let mut sink = |_| {};
    let mut out = Emitter::new(&mut sink);
    mailflow_collector_exim::collect_text(data, &mut out);
});

//! Arbitrary bytes as Exchange tracking and protocol logs, through the whole collector: every line form, correlation,
//! event building. Run: `cargo fuzz run exchange_lines fuzz/corpus/exchange_lines`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailflow_component::Emitter;

fuzz_target!(|data: &[u8]| {
    let mut sink = |_| {};
    let mut out = Emitter::new(&mut sink);
    mailflow_collector_exchange_server::collect_text(data, &mut out);
});

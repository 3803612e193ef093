//! Arbitrary bytes as a Postfix log, through the whole collector: header parsing, every line
//! form, correlation, event building. Run: `cargo fuzz run postfix_lines fuzz/corpus/postfix_lines`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailflow_component::Emitter;

fuzz_target!(|data: &[u8]| {
    let mut sink = |_| {};
    let mut out = Emitter::new(&mut sink);
    mailflow_collector_postfix::collect_text(data, &mut out);
});

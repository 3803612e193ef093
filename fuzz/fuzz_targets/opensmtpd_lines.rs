//! Arbitrary bytes as an OpenSMTPD log, through the whole collector: every line form, correlation,
//! event building. Run: `cargo fuzz run opensmtpd_lines fuzz/corpus/opensmtpd_lines`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailflow_component::Emitter;

fuzz_target!(|data: &[u8]| {
    let mut sink = |_| {};
    let mut out = Emitter::new(&mut sink);
    mailflow_collector_opensmtpd::collect_text(data, &mut out);
});

//! No input makes the collector panic: random bytes, and real-looking lines with random
//! damage (cut short, bytes replaced, lines shuffled). Every line is either used or counted.

use proptest::prelude::*;

const LINES: &[&str] = &[
    "2026-12-05 02:33:11 SMTP connection from [127.0.0.20] (TCP/IP connection count = 1)",
    "2026-12-05 02:33:11 1xZfaJ-0000je-2s <= sender3@corp.test H=(vm) [127.0.0.20] P=esmtps X=TLS1.2:ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=no S=3906 id=gt-91-00003@corpus.test for user95@partner13.test user72@partner13.test",
    "2026-12-05 02:33:11 1xZfaJ-0000je-2s => user95@partner13.test R=partners T=remote_smtp S=3969 H=127.0.3.13 [127.0.3.13] X=TLS1.3:ECDHE_SECP256R1__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=no DN=\"CN=peer.corp.test\" C=\"250 2.0.0 Ok: queued as REMOTE746640\"",
    "2026-12-05 02:33:11 1xZfaJ-0000je-2s -> user72@partner13.test R=partners T=remote_smtp S=3969 H=127.0.3.13 [127.0.3.13] X=TLS1.3:ECDHE_SECP256R1__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=no DN=\"CN=peer.corp.test\" C=\"250 2.0.0 Ok: queued as REMOTE746640\"",
    "2026-12-05 02:33:11 1xZfaJ-0000je-2s Completed",
    "2026-12-05 02:33:12 1xZfaK-0000jn-0W == user86@flaky.test R=partners T=remote_smtp defer (-44) H=127.0.3.5 [127.0.3.5]: SMTP error from remote mail server after RCPT TO:<user86@flaky.test>: 451 4.3.2 Please try again later",
    "2026-12-05 02:33:13 1xZfaL-0000ld-1E ** user14@reject.test R=partners T=remote_smtp H=127.0.3.3 [127.0.3.3] X=TLS1.3:ECDHE_SECP256R1__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=no DN=\"CN=peer.corp.test\": SMTP error from remote mail server after RCPT TO:<user14@reject.test>: 550 5.1.1 <user14@reject.test>: Recipient address rejected: User unknown",
    "2026-12-05 02:33:13 1xZfaL-0000m2-1N <= <> R=1xZfaL-0000ld-1E U=Debian-exim P=local S=3895 for sender24@corp.test",
    "2026-12-05 02:33:13 H=(vm) [127.0.1.120] X=TLS1.3:ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=no F=<sender30@ext12.example> rejected RCPT <victim@partner13.test>: relaying denied",
    "2026-12-04 15:00:00.456 +0100 [4711] 1tHRd4-00000003Cq6-1aBc <= a@example.net H=mail.example.net (helo) [2001:db8::25]:50000 I=[2001:db8::1]:25 P=esmtps X=TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256 CV=yes S=4321 id=p1@example.net for b@corp.example",
    "2026-12-04 15:00:01 1tHRd4-00000003Cq6-1aBc => x@example.org R=dnslookup T=remote_smtp H=mx.example.org DS [203.0.113.40]:25* X=TLS1.3:TLS_AES_128_GCM_SHA256:128 CV=dane C=\"250 OK\"",
    "2026-12-04 15:00:02 1tHRd4-00000003Cq6-1aBc ** a@gone.test R=dnslookup T=remote_smtp: retry timeout exceeded",
    "2026-12-04 15:00:02 1tHRd4-00000003Cq6-1aBc == c@stuck.test R=dnslookup T=remote_smtp defer (111): Connection refused H=mx.stuck.test [203.0.113.34]: later",
    "Dec  4 15:00:00 mx1 exim[1234]: [1/2] 2026-12-04 15:00:00 1xZfaJ-0000jh-2i <= a@example.net H=[198.51.100.60] P=esmtp S=100",
    "Dec  4 15:01:01 mx1 exim4[1301]: 1xZfaK-0000ab-12 => x@example.org R=dnslookup T=remote_smtp H=mx.example.org [203.0.113.70] C=\"250 OK\"",
    "<22>1 2026-12-04T14:04:00Z mx1 exim 1600 - - 1xZfaK-0000ab-12 Completed",
    " Suggested action: use keep_environment.",
    "P Received: from bad.example.com ([198.51.100.92])",
];

fn run(text: &[u8]) -> (u64, u64) {
    mailflow_testkit::run_text(mailflow_collector_exim::collect_text, text)
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        run(&bytes);
    }

    #[test]
    fn damaged_real_lines_never_panic(
        picks in proptest::collection::vec((0..LINES.len(), 0usize..400, any::<u8>(), 0usize..400), 1..60)
    ) {
        run(&mailflow_testkit::damaged_lines(LINES, &picks));
    }
}

#[test]
fn every_undamaged_line_is_used() {
    let text = LINES.join("\n");
    let (events, skipped) = run(text.as_bytes());
    assert_eq!(skipped, 0);
    // Inbound: 1xZfaJ-0000je-2s, 1tHRd4…, 1xZfaJ-0000jh-2i (through syslog); not the local bounce.
    // Outbound: 1xZfaJ-0000je-2s (two recipients, one relay), 1xZfaK-0000jn-0W (deferred),
    // 1xZfaL-0000ld-1E (failed), 1tHRd4… at two relays (delivered, deferred; its failure without
    // a relay is none), 1xZfaK-0000ab-12 (completed through RFC 5424).
    assert_eq!(events, 3 + 6, "3 inbound, 6 outbound");
}

//! No input makes the collector panic: random bytes, and real-looking lines with random
//! damage (cut short, bytes replaced, lines shuffled). Every line is either used or counted.

use proptest::prelude::*;

const LINES: &[&str] = &[
    "Dec  4 09:00:01 mx1 smtpd[3100]: 1a2b3c4d00000001 smtp connected address=192.0.2.10 host=mail.example.net",
    "Dec  4 09:00:01 mx1 smtpd[3100]: 1a2b3c4d00000001 smtp tls ciphers=TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256",
    "Dec  4 09:00:02 mx1 smtpd[3100]: 1a2b3c4d00000001 smtp message msgid=5e1f0a01 size=2310 nrcpt=1 proto=ESMTP",
    "Dec  4 09:00:02 mx1 smtpd[3100]: 1a2b3c4d00000001 smtp envelope evpid=5e1f0a0111111111 from=<a@example.net> to=<b@partner.example>",
    "Dec  4 09:00:03 mx1 smtpd[3100]: 1a2b3c4d00000001 smtp disconnected reason=quit",
    "Dec  4 09:00:03 mx1 smtpd[3100]: 1a2b3c4d000000f1 mta connecting address=smtp://203.0.113.25:25 host=mx.partner.example",
    "Dec  4 09:00:03 mx1 smtpd[3100]: 1a2b3c4d000000f1 mta tls ciphers=TLSv1.3:TLS_AES_256_GCM_SHA384:256",
    "Dec  4 09:00:03 mx1 smtpd[3100]: 1a2b3c4d000000f1 mta server-cert-check result=\"success\"",
    "Dec  4 09:00:04 mx1 smtpd[3100]: 1a2b3c4d000000f1 mta delivery evpid=5e1f0a0111111111 from=<a@example.net> to=<b@partner.example> rcpt=<-> source=\"192.0.2.1\" relay=\"203.0.113.25 (mx.partner.example)\" delay=1s result=\"Ok\" stat=\"250 2.0.0 Ok\"",
    "Dec  4 09:00:14 mx1 smtpd[3100]: 1a2b3c4d000000f1 mta disconnected reason=quit messages=1",
    "Dec  4 09:00:05 mx1 smtpd[3100]: 1a2b3c4d000000a1 mda delivery evpid=5e1f0a0122222222 from=<a@x> to=<c@corp.example> rcpt=<c@corp.example> user=c delay=0s result=Ok stat=Delivered",
    "Dec  4 09:00:06 mx1 smtpd[3100]: relay: Expire for 5e1f0a0133333333: from=<a@x>, to=<d@y>, rcpt=<->, delay=4d, stat=Envelope expired",
    "<22>1 2026-12-04T15:00:00.1+01:00 mx2 smtpd 700 - [a b=\"]\"] 0000000000000001 smtp connected address=IPv6:2001:db8::1 host=<unknown>",
    r#"{"__REALTIME_TIMESTAMP":"1796374801000000","SYSLOG_IDENTIFIER":"smtpd","_PID":"1","MESSAGE":"0000000000000002 smtp event=starttls ciphers=\"version=TLSv1.2, cipher=X, bits=1\""}"#,
];

fn run(text: &[u8]) -> (u64, u64) {
    mailflow_testkit::run_text(mailflow_collector_opensmtpd::collect_text, text)
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        run(&bytes);
    }

    #[test]
    fn damaged_real_lines_never_panic(
        picks in proptest::collection::vec((0..LINES.len(), 0usize..300, any::<u8>(), 0usize..300), 1..60)
    ) {
        run(&mailflow_testkit::damaged_lines(LINES, &picks));
    }
}

#[test]
fn every_undamaged_line_is_used() {
    let text = LINES.join("\n");
    let (events, skipped) = run(text.as_bytes());
    assert_eq!(skipped, 0);
    assert_eq!(events, 2, "one inbound, one outbound");
}

//! No input makes the collector panic: random bytes, and real-looking lines with random
//! damage (cut short, bytes replaced, lines shuffled). Every line is either used or counted.

use proptest::prelude::*;

const LINES: &[&str] = &[
    "Dec  4 09:00:01 mx1 postfix/smtpd[2001]: connect from a.example[192.0.2.10]",
    "Dec  4 09:00:01 mx1 postfix/smtpd[2001]: Anonymous TLS connection established from a.example[192.0.2.10]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
    "Dec  4 09:00:02 mx1 postfix/smtpd[2001]: 4Q1AbC2xyzA: client=a.example[192.0.2.10]",
    "Dec  4 09:00:02 mx1 postfix/cleanup[2002]: 4Q1AbC2xyzA: message-id=<m1@example.net>",
    "Dec  4 09:00:02 mx1 postfix/qmgr[1500]: 4Q1AbC2xyzA: from=<alice@example.net>, size=2048, nrcpt=1 (queue active)",
    "Dec  4 09:00:02 mx1 postfix/smtpd[2001]: disconnect from a.example[192.0.2.10] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7",
    "Dec  4 09:00:03 mx1 postfix/smtp[2200]: Verified TLS connection established to mx.p.example[203.0.113.25]:25: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
    "Dec  4 09:00:03 mx1 postfix/smtp[2200]: 4Q1AbC2xyzA: to=<d@p.example>, orig_to=<x@y>, relay=mx.p.example[203.0.113.25]:25, conn_use=2, delay=1.1, delays=0.1/0/0.5/0.5, tls=may:none, dsn=2.0.0, status=sent (250 ok)",
    "Dec  4 09:00:03 mx1 postfix/tlsproxy[1700]: DISCONNECT [203.0.113.25]:25",
    "Dec  4 09:00:04 mx1 postfix/qmgr[1500]: 4Q1AbC2xyzA: from=<alice@example.net>, status=expired, returned to sender",
    "Dec  4 09:00:04 mx1 postfix/qmgr[1500]: 4Q1AbC2xyzA: removed",
    "<22>1 2026-12-04T15:00:00.1+01:00 mx2 postfix/smtpd 700 - [a b=\"]\"] connect from b[2001:db8::1]",
    r#"{"__REALTIME_TIMESTAMP":"1796374801000000","SYSLOG_IDENTIFIER":"postfix/smtpd","_PID":"1","MESSAGE":"connect from x[192.0.2.1]"}"#,
];

fn run(text: &[u8]) -> (u64, u64) {
    mailflow_testkit::run_text(mailflow_collector_postfix::collect_text, text)
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

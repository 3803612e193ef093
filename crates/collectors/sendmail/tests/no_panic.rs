//! No input makes the collector panic: random bytes, and real-looking lines with random
//! damage (cut short, bytes replaced, lines shuffled). Every line is either used or counted.

use proptest::prelude::*;

const LINES: &[&str] = &[
    "Dec  4 09:00:01 mx1 sm-mta[2001]: STARTTLS=server, relay=a.example [192.0.2.10], version=TLSv1.3, verify=NOT, cipher=TLS_AES_256_GCM_SHA384, bits=256/256",
    "Dec  4 09:00:02 mx1 sm-mta[2001]: 5B4901a1002001: from=<alice@example.net>, size=2048, class=0, nrcpts=2, msgid=<m1@example.net>, proto=ESMTPS, daemon=MTA-v4, relay=a.example [192.0.2.10]",
    "Dec  4 09:00:02 mx1 sm-mta[2002]: 5B4901a1002001: to=<bob@corp.example>, delay=00:00:00, xdelay=00:00:00, mailer=local, pri=32048, dsn=2.0.0, stat=Sent",
    "Dec  4 09:00:03 mx1 sm-mta[2002]: STARTTLS=client, relay=mx.p.example., version=TLSv1.2, verify=OK, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256",
    "Dec  4 09:00:03 mx1 sm-mta[2002]: 5B4901a1002001: to=<d@p.example>,<e@p.example>, ctladdr=<bob@corp.example> (1000/1000), delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=32048, relay=mx.p.example. [203.0.113.25], dsn=4.3.0, reply=451 4.3.0 Try, later, stat=Deferred: 451 4.3.0 Try, later",
    "Dec  4 09:20:03 mx1 sm-mta[3000]: 5B4901a1002001: to=<d@p.example>,<e@p.example>, delay=00:20:01, xdelay=00:00:01, mailer=esmtp, pri=122048, relay=mx.p.example. [IPv6:2001:db8::25], dsn=2.0.0, stat=Sent (ok)",
    "Dec  4 09:20:03 mx1 sm-mta[3000]: 5B4901a1002001: 5B4920a1003000: DSN: User unknown",
    "Dec  4 09:20:04 mx1 sm-mta[3000]: 5B4901a1002001: done; delay=00:20:02, ntries=2",
    "Dec  4 09:20:05 mx1 sm-mta[3001]: 5B4920b1003001: Milter: data, reject=550 5.7.1 Blocked",
    "Dec  4 09:20:06 mx1 sm-mta[3002]: 5B4920c1003002: ruleset=check_rcpt, arg1=<v@x.example>, relay=[192.0.2.11], reject=550 5.7.1 <v@x.example>... Relaying denied",
    "Dec  4 09:20:06 mx1 sm-mta[3002]: 5B4920c1003002: from=<s@x.example>, size=100, class=0, nrcpts=0, proto=ESMTP, daemon=MTA-v4, relay=[192.0.2.11]",
    "<22>1 2026-12-04T15:00:00.1+01:00 mx2 sm-mta 700 - [a b=\"]\"] 5B4F00a1000700: from=<z@y.example>, size=9, class=0, nrcpts=1, proto=SMTP, daemon=MTA-v6, relay=[IPv6:2001:db8::1]",
    r#"{"__REALTIME_TIMESTAMP":"1796374801000000","SYSLOG_IDENTIFIER":"sm-mta","_PID":"1","MESSAGE":"STARTTLS=client, error: connect failed=-1, reason=x, relay=mx.p.example."}"#,
];

fn run(text: &[u8]) -> (u64, u64) {
    mailflow_testkit::run_text(mailflow_collector_sendmail::collect_text, text)
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
    // Inbound from 192.0.2.10 and from 2001:db8::1, outbound to mx.p.example once.
    assert_eq!(events, 3);
}

//! No input makes the collector panic: random bytes, and real-looking lines (headers of both
//! kinds of log, protocol and tracking rows) with random damage: cut short, bytes replaced,
//! lines shuffled. Every line is either used or counted.

use proptest::prelude::*;

const LINES: &[&str] = &[
    "#Software: Microsoft Exchange Server",
    "#Log-type: SMTP Receive Protocol Log",
    "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context",
    r"2026-12-04T15:00:03.007Z,EX01\Default Frontend EX01,08DE1A2B3C4D5E01,0,10.0.0.5:25,203.0.113.7:51234,+,,",
    r"2026-12-04T15:00:03.042Z,EX01\Default Frontend EX01,08DE1A2B3C4D5E01,5,10.0.0.5:25,203.0.113.7:51234,<,STARTTLS,",
    r#"2026-12-04T15:00:03.070Z,EX01\Default Frontend EX01,08DE1A2B3C4D5E01,9,10.0.0.5:25,203.0.113.7:51234,*,,"TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDHE with strength 384 bits""#,
    r"2026-12-04T15:00:03.091Z,EX01\Default Frontend EX01,08DE1A2B3C4D5E01,12,10.0.0.5:25,203.0.113.7:51234,<,MAIL FROM:<news@partner.example> SIZE=12000,",
    r"2026-12-04T15:00:03.098Z,EX01\Default Frontend EX01,08DE1A2B3C4D5E01,13,10.0.0.5:25,203.0.113.7:51234,*,08DE1A2B3C4D5E01;2026-12-04T15:00:03.091Z;1,receiving message",
    r"2026-12-04T15:00:03.100Z,EX01\Default EX01,08DE1A2B3C4D5E09,3,10.0.0.5:2525,10.0.0.5:4000,<,XPROXYFROM SID=08DE1A2B3C4D5E01 IP=203.0.113.7 PORT=51234 DOMAIN=x SEQNUM=1,",
    r"2026-12-04T15:00:03.168Z,EX01\Default Frontend EX01,08DE1A2B3C4D5E01,23,10.0.0.5:25,203.0.113.7:51234,-,,Remote",
    "#Log-type: SMTP Send Protocol Log",
    "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context",
    "2026-12-04T15:00:05.010Z,Outbound to Internet,08DE5A5A5A5A0001,1,10.0.0.5:31021,198.51.100.30:25,+,,",
    "2026-12-04T15:00:05.060Z,Outbound to Internet,08DE5A5A5A5A0001,9,10.0.0.5:31021,198.51.100.30:25,*,,TLS protocol SP_PROT_TLS1_3_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256",
    "2026-12-04T15:00:05.070Z,Outbound to Internet,08DE5A5A5A5A0001,10,10.0.0.5:31021,198.51.100.30:25,*,,sending message with RecordId 1 and InternetMessageId <m2@corp.example>",
    "#Log-type: Message Tracking Log",
    "#Fields: date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,internal-message-id,message-id,network-message-id,recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data,transport-traffic-type,log-id,schema-version",
    r#"2026-12-04T15:00:03.218Z,203.0.113.7,mail.partner.example,10.0.0.5,EX01,08DE1A2B3C4D5E01;2026-12-04T15:00:03.000Z;1,EX01\Default Frontend EX01,SMTP,RECEIVE,73014444001,<m1@partner.example>,6c2f0e6e-0001-4000-8000-000000000001,alice@corp.example;bob@corp.example,To;To,12000,2,,,"Invoice 2026-117, ""final"" version",news@partner.example,news@partner.example,,Incoming,,203.0.113.7,10.0.0.5,S:ProxyHop1=EX01.corp.example(10.0.0.5),Email,11111111-2222-3333-4444-555555555555,15.02.1544.004"#,
    r#"2026-12-04T15:00:05.100Z,10.0.0.5,EX01.corp.example,198.51.100.30,mx.fabrikam.example,08DE5A5A5A5A0001;250 2.0.0 Ok;ClientSubmitTime:,Outbound to Internet,SMTP,DEFER,73014444021,<m2@corp.example>,6c2f0e6e-0002-4000-8000-000000000002,orders@fabrikam.example,"451 4.7.1 Greylisted, later",9000,1,,,Offer,sales@corp.example,sales@corp.example,,Originating,,,,,Email,11111111-2222-3333-4444-555555555556,15.02.1544.004"#,
    r#"2026-12-04T15:10:05.100Z,10.0.0.5,EX01.corp.example,198.51.100.30,mx.fabrikam.example,08DE5A5A5A5A0001;250 2.0.0 Ok;ClientSubmitTime:,Outbound to Internet,SMTP,SEND,73014444021,<m2@corp.example>,6c2f0e6e-0002-4000-8000-000000000002,orders@fabrikam.example,250 2.0.0 Ok,9000,1,,,Offer,sales@corp.example,sales@corp.example,,Originating,,,,,Email,11111111-2222-3333-4444-555555555557,15.02.1544.004"#,
    r#"2026-12-04T18:10:05.100Z,,,,EX01,,,QUEUE,FAIL,73014444021,<m2@corp.example>,6c2f0e6e-0002-4000-8000-000000000002,orders@fabrikam.example,550 4.4.7 QUEUE.Expired; message expired,9000,1,,,Offer,sales@corp.example,sales@corp.example,,Originating,,,,,Email,11111111-2222-3333-4444-555555555558,15.02.1544.004"#,
];

fn run(text: &[u8]) -> (u64, u64) {
    mailflow_testkit::run_text(mailflow_collector_exchange_server::collect_text, text)
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        run(&bytes);
    }

    #[test]
    fn damaged_real_lines_never_panic(
        picks in proptest::collection::vec((0..LINES.len(), 0usize..400, any::<u8>(), 0usize..400), 1..80)
    ) {
        run(&mailflow_testkit::damaged_lines(LINES, &picks));
    }

    #[test]
    fn real_lines_in_any_order_never_panic(order in proptest::collection::vec(0..LINES.len(), 1..120)) {
        let text: Vec<&str> = order.iter().map(|&i| LINES[i]).collect();
        run(text.join("\r\n").as_bytes());
    }
}

#[test]
fn every_undamaged_line_is_used() {
    let text = LINES.join("\r\n");
    let (events, skipped) = run(text.as_bytes());
    assert_eq!(skipped, 0);
    assert_eq!(events, 2, "one inbound, one outbound (deferred, then delivered)");
}

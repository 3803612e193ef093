#!/usr/bin/env python3
"""Writes the input logs of the cases in this folder, and each case's truth.jsonl: the events the
collector must produce, one line each (direction, time, TLS version, status, connector, peer,
recipients). Run it from anywhere: `python3 tests/make_cases.py`; the files it writes are
committed, so the cases do not depend on it. `tests/truth.rs` checks the collector against the
truth; `expected.jsonl` and `expected.txt` (blessed) hold the full events and warnings.

The logs follow Microsoft's documented field lists: message tracking logs of Exchange 2010
(no network-message-id), 2013 and 2016/2019 (plus transport-traffic-type, log-id,
schema-version), and SMTP receive and send protocol logs.
"""

import gzip
import json
import os
import uuid
from datetime import datetime, timedelta, timezone

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases")

TRACKING_2010 = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,"
    "internal-message-id,message-id,recipient-address,recipient-status,total-bytes,recipient-count,"
    "related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,"
    "tenant-id,original-client-ip,original-server-ip,custom-data"
).split(",")
TRACKING_2013 = TRACKING_2010[:11] + ["network-message-id"] + TRACKING_2010[11:]
TRACKING_2019 = TRACKING_2013 + ["transport-traffic-type", "log-id", "schema-version"]
PROTOCOL = "date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context".split(",")
VERSIONS = {"2010": "14.03.0513.000", "2013": "15.00.1497.002", "2019": "15.02.1544.004"}

TLS_TEXT = (
    "TLS protocol SP_PROT_{v}_{side} negotiation succeeded using bulk encryption algorithm {cipher} with strength "
    "256 bits, MAC hash algorithm CALG_SHA_384 with strength 0 bits and key exchange algorithm CALG_ECDHE with "
    "strength 384 bits"
)
TLS_NAMES = {"1.2": "TLS1_2", "1.3": "TLS1_3", "1.0": "TLS1_0"}
TLS_LABELS = {None: "none", "1.2": "tls1_2", "1.3": "tls1_3", "1.0": "tls1_0", "unknown": None}


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def cell(value):
    value = "" if value is None else str(value)
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


class Log:
    """One log file: header blocks and lines."""

    def __init__(self, path):
        self.path = path
        self.lines = []

    def header(self, log_type, fields, t, version="15.02.1544.004"):
        self.fields = fields
        self.lines += [
            "#Software: Microsoft Exchange Server",
            "#Version: " + version,
            "#Log-type: " + log_type,
            "#Date: " + stamp(t),
            "#Fields: " + ",".join(fields),
        ]

    def row(self, values):
        self.lines.append(",".join(cell(values.get(f)) for f in self.fields))

    def raw(self, line):
        self.lines.append(line)

    def write(self, folder, bom=False, gz=False):
        data = ("\ufeff" if bom else "") + "\r\n".join(self.lines) + "\r\n"
        path = os.path.join(folder, self.path)
        if gz:
            with gzip.GzipFile(path, "wb", mtime=0) as f:
                f.write(data.encode())
        else:
            with open(path, "wb") as f:
                f.write(data.encode())


class Protocol(Log):
    def __init__(self, path, kind, t, version="15.02.1544.004"):
        super().__init__(path)
        self.kind = kind
        self.header("SMTP %s Protocol Log" % ("Receive" if kind == "recv" else "Send"), PROTOCOL, t, version)

    def add(self, t, connector, sid, seq, local, remote, event, data="", context=""):
        self.row(
            {
                "date-time": stamp(t),
                "connector-id": connector,
                "session-id": sid,
                "sequence-number": seq,
                "local-endpoint": local,
                "remote-endpoint": remote,
                "event": event,
                "data": data,
                "context": context,
            }
        )


class Clock:
    def __init__(self, t):
        self.t = t

    def tick(self, ms=7):
        self.t += timedelta(milliseconds=ms)
        return self.t


def receive_session(log, t, sid, connector, local, remote, helo, tls, mails, server="EX01.corp.example", proxy=None):
    """An inbound SMTP session; `tls` is None, "1.2", "1.3", "fail", "starttls" (no version line).
    `mails` are (sender, [recipients], size, message_id). Returns the time after it."""
    c = Clock(t)
    seq = iter(range(1000))
    add = lambda event, data="", context="": log.add(c.tick(), connector, sid, next(seq), local, remote, event, data, context)
    add("+")
    add("*", "SMTPSubmit SMTPAcceptAnyRecipient SMTPAcceptAnySender", "Set Session Permissions")
    add(">", "220 %s Microsoft ESMTP MAIL Service ready at Fri, 4 Dec 2026 15:00:00 +0000" % server)
    add("<", "EHLO " + helo)
    add(">", "250-%s Hello [%s] SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS 8BITMIME CHUNKING" % (server, remote.rsplit(":", 1)[0]))
    if tls:
        add("<", "STARTTLS")
        add(">", "220 2.0.0 SMTP server ready")
        add("*", "", "Sending certificate")
        add("*", "CN=mail.corp.example", "Certificate subject")
        if tls in ("1.2", "1.3"):
            add("*", "", TLS_TEXT.format(v=TLS_NAMES[tls], side="SERVER", cipher="CALG_AES_256"))
        elif tls == "fail":
            add("*", "", "TLS negotiation failed with error UnknownCredentials")
        add("<", "EHLO " + helo)
        add(">", "250-%s Hello [%s] SIZE 37748736 PIPELINING DSN" % (server, remote.rsplit(":", 1)[0]))
    if proxy:
        add("<", "XPROXYFROM SID=%s IP=%s PORT=%s DOMAIN=%s SEQNUM=1 PERMS=1 AUTHSRC=Anonymous" % proxy)
        add(">", "250 XProxyFrom accepted")
    for n, (sender, rcpts, size, mid) in enumerate(mails, 1):
        add("<", "MAIL FROM:<%s> SIZE=%d" % (sender, size))
        add("*", "%s;%s;%d" % (sid, stamp(c.t), n), "receiving message")
        add(">", "250 2.1.0 Sender OK")
        for r in rcpts:
            add("<", "RCPT TO:<%s>" % r)
            add(">", "250 2.1.5 Recipient OK")
        add("<", "BDAT %d LAST" % size)
        add(">", "250 2.6.0 %s [InternalId=4294967%03d, Hostname=%s] %d bytes in 0.120, 101.7 KB/sec Queued mail for delivery" % (mid, n, server, size))
    add("<", "QUIT")
    add(">", "221 2.0.0 Service closing transmission channel")
    add("-", "", "Remote")
    return c.t


def send_session(log, t, sid, connector, local, remote, mx, tls, mails, replies=None):
    """An outbound SMTP session; `mails` are (sender, [recipients], size, message_id)."""
    c = Clock(t)
    seq = iter(range(1000))
    add = lambda event, data="", context="": log.add(c.tick(), connector, sid, next(seq), local, remote, event, data, context)
    add("*", "", "attempting to connect")
    add("+")
    add("<", "220 %s ESMTP Postfix" % mx)
    add(">", "EHLO EX01.corp.example")
    add("<", "250-%s PIPELINING SIZE 10240000 STARTTLS ENHANCEDSTATUSCODES 8BITMIME" % mx)
    if tls:
        add(">", "STARTTLS")
        add("<", "220 2.0.0 Ready to start TLS")
        add("*", "", "Received certificate")
        add("*", "CN=" + mx, "Certificate subject")
        if tls in ("1.2", "1.3"):
            add("*", "", TLS_TEXT.format(v=TLS_NAMES[tls], side="CLIENT", cipher="CALG_AES_256"))
        add(">", "EHLO EX01.corp.example")
        add("<", "250-%s PIPELINING SIZE 10240000 ENHANCEDSTATUSCODES 8BITMIME" % mx)
    for n, (sender, rcpts, size, mid) in enumerate(mails):
        add("*", "", "sending message with RecordId 5153960%04d and InternetMessageId %s" % (n, mid))
        add(">", "MAIL FROM:<%s> SIZE=%d" % (sender, size))
        for r in rcpts:
            add(">", "RCPT TO:<%s>" % r)
        add("<", "250 2.1.0 Ok")
        for r in rcpts:
            add("<", "250 2.1.5 Ok")
        add(">", "BDAT %d LAST" % size)
        add("<", (replies or {}).get(mid, "250 2.0.0 Ok: queued as 4Q1AbC%04d" % n))
    add(">", "QUIT")
    add("<", "221 2.0.0 Bye")
    add("-", "", "Local")
    return c.t


class Tracking(Log):
    def __init__(self, path, version, t):
        super().__init__(path)
        self.version = version
        self.start(version, t)

    def start(self, version, t):
        self.version = version
        fields = {"2010": TRACKING_2010, "2013": TRACKING_2013, "2019": TRACKING_2019}[version]
        self.header("Message Tracking Log", fields, t, VERSIONS[version])

    def event(self, t, event, source, msg, **kw):
        values = {
            "date-time": stamp(t),
            "source": source,
            "event-id": event,
            "internal-message-id": msg["internal"],
            "message-id": msg["id"],
            "network-message-id": msg["network"],
            "recipient-address": ";".join(kw.pop("rcpts", msg["rcpts"])),
            "total-bytes": msg["size"],
            "message-subject": msg["subject"],
            "sender-address": msg["sender"],
            "return-path": msg["sender"],
            "directionality": msg.get("directionality", "Incoming"),
            "transport-traffic-type": "Email",
            "log-id": str(uuid.uuid5(uuid.NAMESPACE_OID, msg["id"] + event + stamp(t))),
            "schema-version": VERSIONS["2019"],
        }
        values["recipient-count"] = len(values["recipient-address"].split(";"))
        values.update(kw)
        self.row(values)


def message(n, sender, rcpts, subject="Status report", size=12000, directionality="Incoming"):
    return {
        "internal": 73014444000 + n,
        "id": "<%s@%s>" % (uuid.uuid5(uuid.NAMESPACE_DNS, str(n)).hex[:20].upper(), sender.split("@")[1]),
        "network": str(uuid.UUID(int=(n * 7919) << 64 | n)),
        "rcpts": rcpts,
        "sender": sender,
        "subject": subject,
        "size": size,
        "directionality": directionality,
    }


class Case:
    def __init__(self, name, config, readme):
        self.name = name
        self.dir = os.path.join(HERE, name)
        os.makedirs(self.dir, exist_ok=True)
        self.config = config
        self.readme = readme
        self.truth = []

    def expect(self, direction, t, tls, status=None, connector=None, peer=None, recipients=1):
        self.truth.append(
            {
                "direction": direction,
                "time": stamp(t),
                "tls": TLS_LABELS[tls] if tls in TLS_LABELS else tls,
                "status": status or ("delivered" if direction == "outbound" else None),
                "connector": connector,
                "peer": peer,
                "recipients": recipients,
            }
        )

    def done(self):
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write("\n".join("# " + line for line in self.readme.strip().splitlines()) + "\n" + self.config.strip() + "\n")
        self.truth.sort(key=lambda e: (e["time"], e["direction"], e["peer"] or ""))
        with open(os.path.join(self.dir, "truth.jsonl"), "w") as f:
            for e in self.truth:
                f.write(json.dumps(e, sort_keys=True) + "\n")


SITE = '\n[site]\ninternal_networks = ["10.0.0.0/8"]\naccepted_domains = ["corp.example"]\n'
EX01 = "10.0.0.5"
FRONTEND = r"EX01\Default Frontend EX01"
HUB = r"EX01\Default EX01"
INTRA = "Intra-Organization SMTP Send Connector"
T0 = datetime(2026, 12, 4, 15, 0, 0, tzinfo=timezone.utc)


def inbound(case, trk, recv, t, n, sid, client, port, helo, tls, rcpts, connector=FRONTEND, subject="Status report",
            sender=None, expect=True, named=None, mails=1, version="2019"):
    """A message (or several) from outside over one receive session, its tracking rows and its
    delivery to the mailboxes (internal hops that must not count). Returns the time after it."""
    sender = sender or "news@%s" % helo.split(".", 1)[1]
    msgs = [message(n + i, sender, rcpts, subject) for i in range(mails)]
    remote = ("[%s]:%d" % (client, port)) if ":" in client else ("%s:%d" % (client, port))
    end = receive_session(recv, t, sid, connector, EX01 + ":25", remote, helo, tls,
                          [(m["sender"], m["rcpts"], m["size"], m["id"]) for m in msgs])
    for i, m in enumerate(msgs):
        at = end + timedelta(milliseconds=50 + 30 * i)
        trk.event(at, "RECEIVE", "SMTP", m, **{
            "client-ip": client, "client-hostname": helo, "server-ip": EX01, "server-hostname": "EX01",
            "source-context": "%s;%s;%d" % (sid, stamp(t), i + 1), "connector-id": connector,
            "recipient-status": ";".join("To" for _ in m["rcpts"]), "original-client-ip": client,
            "original-server-ip": EX01,
            "custom-data": "S:ProxiedClientIPAddress=%s;S:ProxiedClientHostname=%s;S:ProxyHop1=EX01.corp.example(%s)" % (client, helo, EX01),
        })
        trk.event(at + timedelta(milliseconds=5), "AGENTINFO", "AGENT", m, **{
            "client-hostname": "EX01", "custom-data": "S:CFA=SUM|SID=%s|ET=MAIL FROM|Action=OriginalDomainTrust;S:DeliveryPriority=Normal" % sid,
        })
        trk.event(at + timedelta(milliseconds=9), "HAREDIRECT", "SMTP", m, **{
            "server-hostname": "EX01", "source-context": "EX02.corp.example = 250 2.6.0 %s Queued mail for redundancy" % m["id"],
        })
        # The hop to the mailbox: an SMTP SEND through the intra-organization connector.
        trk.event(at + timedelta(milliseconds=40), "SEND", "SMTP", m, **{
            "client-ip": EX01, "client-hostname": "EX01.corp.example", "server-ip": EX01, "server-hostname": "EX01.corp.example",
            "source-context": "08DE1111111111%02X;250 2.1.5 Recipient OK;ClientSubmitTime:" % (n % 256),
            "connector-id": INTRA, "recipient-status": ";".join("250 2.1.5 Recipient OK" for _ in m["rcpts"]),
            "message-info": stamp(at), "original-client-ip": client,
        })
        if expect:
            case.expect("inbound", at, tls if tls in ("1.2", "1.3") else (None if tls in (None, "fail") else "unknown"),
                        connector=named, peer=client, recipients=len(set(r.lower() for r in rcpts)))
    return end + timedelta(seconds=1)


def mailbox_delivery(md, t, m):
    """The Mailbox Transport Delivery service's rows (MSGTRKMD): internal, never counted."""
    md.event(t, "RECEIVE", "SMTP", m, **{"client-ip": EX01, "client-hostname": "EX01.corp.example", "server-ip": EX01,
             "server-hostname": "EX01.corp.example", "source-context": "08DE22222222222%X;%s;0" % (m["internal"] % 16, stamp(t)),
             "connector-id": r"EX01\Default Mailbox Delivery EX01", "original-client-ip": "10.0.0.9"})
    md.event(t + timedelta(milliseconds=30), "DELIVER", "STOREDRIVER", m, **{"server-hostname": "EX01.corp.example",
             "message-info": stamp(t), "source-context": "MDB:5a3c1f2e-0000-4000-8000-000000000001, Mailbox:1, Event:1, MessageClass:IPM.Note"})


def outbound(case, trk, send, t, n, sid, connector, mx, ip, tls, sender, rcpts, status="SEND", expect_status=None,
             submit=True, subject="Proposal", m=None, reply=None, expect=True, ms=None):
    """A message from a mailbox handed to a next hop outside (or refused there)."""
    m = m or message(n, sender, rcpts, subject, directionality="Originating")
    if submit:
        # The Mailbox Transport Submission service hands it to the Transport service on this
        # server: an SMTP RECEIVE from the server itself, not traffic.
        trk.event(t, "RECEIVE", "SMTP", m, **{"client-ip": EX01, "client-hostname": "EX01.corp.example", "server-ip": EX01,
                  "server-hostname": "EX01", "source-context": "08DE3333333333%02X;%s;0" % (n % 256, stamp(t)),
                  "connector-id": HUB, "recipient-status": ";".join("To" for _ in m["rcpts"])})
        if ms is not None:
            ms.event(t - timedelta(milliseconds=200), "SUBMIT", "STOREDRIVER", m, **{"client-ip": EX01, "server-hostname": "EX01.corp.example",
                     "source-context": "MDB:5a3c1f2e-0000-4000-8000-000000000001, Mailbox:2, Event:1, MessageClass:IPM.Note, CreationTime:%s, ClientType:OWA" % stamp(t)})
    c = t + timedelta(seconds=1)
    end = c
    if send is not None and sid is not None:
        end = send_session(send, c, sid, connector, EX01 + ":31%03d" % (n % 1000), "%s:25" % ip, mx, tls,
                           [(sender, rcpts, m["size"], m["id"])], {m["id"]: reply} if reply else None)
    at = end - timedelta(milliseconds=20)
    codes = {"SEND": "250 2.0.0 Ok: queued as 4Q1AbC", "FAIL": "550 5.1.1 <%s>: Recipient address rejected: User unknown, in virtual mailbox table" % rcpts[0],
             "DEFER": "451 4.7.1 <%s>: Recipient address rejected: Greylisted, see https://grey.example/" % rcpts[0]}
    trk.event(at, status, "SMTP", m, rcpts=rcpts, **{
        "client-ip": EX01, "client-hostname": "EX01.corp.example", "server-ip": ip, "server-hostname": mx,
        "source-context": "%s;%s;ClientSubmitTime:%s" % (sid or "", codes[status], stamp(t)), "connector-id": connector,
        "recipient-status": ";".join(codes[status] for _ in rcpts), "message-info": stamp(t),
    })
    if expect:
        label = {"SEND": "delivered", "FAIL": "failed", "DEFER": "deferred"}[status]
        case.expect("outbound", at, tls if tls in ("1.2", "1.3") else (None if tls is None else "unknown"),
                    status=expect_status or label, connector=None if connector in (INTRA,) else connector, peer=ip,
                    recipients=len(rcpts))
    return m, end + timedelta(seconds=1)


# ---------------------------------------------------------------------------------------------

def inbound_tls():
    case = Case("inbound-tls", 'paths = ["MSGTRK*.LOG"]\nprotocol_paths = ["RECV*.LOG"]' + SITE, """
Exchange 2019 inbound over TLS 1.2, TLS 1.3 (an IPv6 client), plaintext, a failed TLS negotiation
(plaintext after it), a session with two messages, a probe without mail, and an internal relay
client through a named receive connector. A message with one RECEIVE row per recipient counts
once. Subjects hold commas and quotes. Mailbox delivery hops (intra-organization SEND,
MSGTRKMD) are not counted.""")
    recv = Protocol("RECV2026120415-1.LOG", "recv", T0)
    trk = Tracking("MSGTRK2026120415-1.LOG", "2019", T0)
    md = Tracking("MSGTRKMD2026120415-1.LOG", "2019", T0)
    t = T0 + timedelta(seconds=3)
    t = inbound(case, trk, recv, t, 1, "08DE1A2B3C4D5E01", "203.0.113.7", 51234, "mail.partner.example", "1.2",
                ["alice@corp.example", "bob@corp.example"], subject='Invoice 2026-117, "final" version')
    m1 = message(1, "news@partner.example", ["alice@corp.example", "bob@corp.example"], 'Invoice 2026-117, "final" version')
    # The same message again, one row for bob (a copy after bifurcation): not a second message.
    trk.event(t, "RECEIVE", "SMTP", m1, rcpts=["bob@corp.example"], **{"client-ip": "203.0.113.7", "client-hostname": "mail.partner.example",
              "server-ip": EX01, "server-hostname": "EX01", "source-context": "08DE1A2B3C4D5E01;%s;1" % stamp(T0), "connector-id": FRONTEND,
              "original-client-ip": "203.0.113.7"})
    mailbox_delivery(md, t + timedelta(milliseconds=300), m1)
    t = inbound(case, trk, recv, t + timedelta(seconds=20), 2, "08DE1A2B3C4D5E02", "2001:db8:5::20", 40022, "mx1.mail.example", "1.3",
                ["carol@corp.example"], subject="Meeting, Tuesday")
    t = inbound(case, trk, recv, t + timedelta(seconds=20), 3, "08DE1A2B3C4D5E03", "192.0.2.44", 33001, "smtp.plain.example", None,
                ["dave@corp.example"])
    t = inbound(case, trk, recv, t + timedelta(seconds=20), 4, "08DE1A2B3C4D5E04", "198.51.100.9", 33002, "old.legacy.example", "fail",
                ["erin@corp.example"])
    t = inbound(case, trk, recv, t + timedelta(seconds=20), 5, "08DE1A2B3C4D5E05", "203.0.113.80", 45000, "bulk.lists.example", "1.2",
                ["frank@corp.example"], mails=2)
    # A probe: EHLO and QUIT, no mail.
    c = Clock(t + timedelta(seconds=5))
    for seq, (ev, data) in enumerate([("+", ""), ("<", "EHLO scanner.example"), (">", "250 EX01 Hello"), ("<", "QUIT"), ("-", "")]):
        recv.add(c.tick(), FRONTEND, "08DE1A2B3C4D5E06", seq, EX01 + ":25", "192.0.2.200:50000", ev, data)
    t = inbound(case, trk, recv, t + timedelta(seconds=30), 7, "08DE1A2B3C4D5E07", "10.1.2.3", 25001, "app01.corp.example", None,
                ["ops@corp.example"], connector=r"EX01\Internal Relay", sender="app@corp.example", named="Internal Relay")
    recv.write(case.dir)
    trk.write(case.dir, bom=True)
    md.write(case.dir)
    case.done()


def partner_connector():
    case = Case("partner-connector", 'paths = ["MessageTracking/MSGTRK*.LOG"]\nprotocol_paths = ["FrontEnd/RECV*.LOG", "Hub/RECV*.LOG"]' + SITE, """
Exchange 2013 (no transport-traffic-type, log-id, schema-version): mail through the named
receive connector EX01\\Partner Inbound. One row names the Front End session itself; the other
names the Mailbox server's session, which the Front End proxied (XPROXYFROM SID=…): its TLS,
listener and connector are the Front End session's. The connector is the name after the
backslash.""")
    os.makedirs(os.path.join(case.dir, "FrontEnd"), exist_ok=True)
    os.makedirs(os.path.join(case.dir, "Hub"), exist_ok=True)
    os.makedirs(os.path.join(case.dir, "MessageTracking"), exist_ok=True)
    fe = Protocol("FrontEnd/RECV2026120415-1.LOG", "recv", T0, VERSIONS["2013"])
    hub = Protocol("Hub/RECV2026120415-1.LOG", "recv", T0, VERSIONS["2013"])
    trk = Tracking("MessageTracking/MSGTRK2026120415-1.LOG", "2013", T0)
    partner = r"EX01\Partner Inbound"
    t = T0 + timedelta(seconds=2)
    t = inbound(case, trk, fe, t, 11, "08D4A1B2C3D4E5F1", "198.51.100.25", 41000, "smtp.fabrikam.example", "1.2",
                ["sales@corp.example"], connector=partner, named="Partner Inbound", sender="orders@fabrikam.example")
    # The proxied one: the Front End session, then the Mailbox server's own session from it.
    m = message(12, "orders@fabrikam.example", ["sales@corp.example", "ceo@corp.example"], "PO 4471, revised")
    fe_end = receive_session(fe, t, "08D4A1B2C3D4E5F2", partner, EX01 + ":25", "198.51.100.25:41001", "smtp.fabrikam.example",
                             "1.2", [(m["sender"], m["rcpts"], m["size"], m["id"])])
    hub_end = receive_session(hub, t + timedelta(milliseconds=400), "08D4A1B2C3D4E6A0", HUB, EX01 + ":2525", EX01 + ":40111",
                              "EX01.corp.example", "starttls", [(m["sender"], m["rcpts"], m["size"], m["id"])],
                              proxy=("08D4A1B2C3D4E5F2", "198.51.100.25", 41001, "smtp.fabrikam.example"))
    at = max(fe_end, hub_end) + timedelta(milliseconds=30)
    trk.event(at, "RECEIVE", "SMTP", m, **{"client-ip": EX01, "client-hostname": "EX01.corp.example", "server-ip": EX01,
              "server-hostname": "EX01", "source-context": "08D4A1B2C3D4E6A0;%s;1" % stamp(t), "connector-id": HUB,
              "original-client-ip": "198.51.100.25", "original-server-ip": EX01})
    case.expect("inbound", at, "1.2", connector="Partner Inbound", peer="198.51.100.25", recipients=2)
    fe.write(case.dir)
    hub.write(case.dir)
    trk.write(case.dir)
    case.done()


def outbound_case():
    case = Case("outbound", 'paths = ["MSGTRK*.LOG"]\nprotocol_paths = ["SEND*.LOG"]' + SITE, """
Exchange 2019 outbound: through the named send connector "To Partner" with TLS 1.2, through
"Outbound to Internet" with TLS 1.3 and in plaintext, a message to two domains (two next hops,
two events) and one with two recipients at one next hop (one event). Mail between mailboxes
(intra-organization connector), the submission from the mailbox (an SMTP RECEIVE from the
server itself) and the MSGTRKMS rows are not traffic.""")
    send = Protocol("SEND2026120415-1.LOG", "send", T0)
    trk = Tracking("MSGTRK2026120415-1.LOG", "2019", T0)
    ms = Tracking("MSGTRKMS2026120415-1.LOG", "2019", T0)
    t = T0 + timedelta(seconds=4)
    _, t = outbound(case, trk, send, t, 21, "08DE5A5A5A5A0001", "To Partner", "mx.fabrikam.example", "198.51.100.30", "1.2",
                    "sales@corp.example", ["orders@fabrikam.example"], ms=ms)
    _, t = outbound(case, trk, send, t, 22, "08DE5A5A5A5A0002", "Outbound to Internet", "mx.gmail.example", "192.0.2.25", "1.3",
                    "ceo@corp.example", ["a@gmail.example", "b@gmail.example"], subject="Lunch, Friday?", ms=ms)
    _, t = outbound(case, trk, send, t, 23, "08DE5A5A5A5A0003", "Outbound to Internet", "mail.plain.example", "203.0.113.99", None,
                    "it@corp.example", ["admin@plain.example"], ms=ms)
    # Two domains: two next hops.
    m = message(24, "hr@corp.example", ["x@one.example", "y@two.example"], "Offer", directionality="Originating")
    _, t = outbound(case, trk, send, t, 24, "08DE5A5A5A5A0004", "Outbound to Internet", "mx.one.example", "192.0.2.61", "1.2",
                    "hr@corp.example", ["x@one.example"], m=m, ms=ms)
    _, t = outbound(case, trk, send, t, 24, "08DE5A5A5A5A0005", "Outbound to Internet", "mx.two.example", "192.0.2.62", "1.3",
                    "hr@corp.example", ["y@two.example"], m=m, submit=False)
    # Mail between two mailboxes: only internal hops.
    m = message(25, "alice@corp.example", ["bob@corp.example"], "Internal", directionality="Originating")
    outbound(case, trk, None, t, 25, None, INTRA, "EX01.corp.example", EX01, None, "alice@corp.example", ["bob@corp.example"],
             m=m, expect=False, ms=ms)
    send.write(case.dir)
    trk.write(case.dir)
    ms.write(case.dir)
    case.done()


def deferred_case():
    case = Case("deferred-then-delivered", 'paths = ["MSGTRK*.LOG"]\nprotocol_paths = ["SEND*.LOG"]' + SITE, """
Deferrals and failures: greylisted then delivered at the same next hop (counts once, delivered,
at the delivering attempt); deferred at one MX then delivered by another (once, delivered);
refused with 550 (failed); deferred until the queue gives up (QUEUE FAIL: failed); still
deferred when the log ends (deferred); one recipient delivered and one deferred in one attempt
(once, delivered).""")
    send = Protocol("SEND2026120415-1.LOG", "send", T0)
    trk = Tracking("MSGTRK2026120415-1.LOG", "2019", T0)
    t = T0 + timedelta(seconds=5)
    greylist = "451 4.7.1 Greylisted, try again later"
    m, t = outbound(case, trk, send, t, 31, "08DE6B6B6B6B0001", "Outbound to Internet", "mx.grey.example", "192.0.2.71", "1.2",
                    "a@corp.example", ["u@grey.example"], status="DEFER", expect=False, reply=greylist)
    _, t = outbound(case, trk, send, t + timedelta(minutes=10), 31, "08DE6B6B6B6B0002", "Outbound to Internet", "mx.grey.example",
                    "192.0.2.71", "1.2", "a@corp.example", ["u@grey.example"], m=m, submit=False)
    m, t = outbound(case, trk, send, t, 32, "08DE6B6B6B6B0003", "Outbound to Internet", "mx1.busy.example", "192.0.2.81", "1.2",
                    "b@corp.example", ["v@busy.example"], status="DEFER", expect=False, reply="421 4.3.2 Too busy, come back later")
    _, t = outbound(case, trk, send, t + timedelta(minutes=2), 32, "08DE6B6B6B6B0004", "Outbound to Internet", "mx2.busy.example",
                    "192.0.2.82", "1.3", "b@corp.example", ["v@busy.example"], m=m, submit=False)
    _, t = outbound(case, trk, send, t, 33, "08DE6B6B6B6B0005", "Outbound to Internet", "mx.strict.example", "192.0.2.91", "1.2",
                    "c@corp.example", ["nobody@strict.example"], status="FAIL", reply="550 5.1.1 User unknown")
    m, t = outbound(case, trk, send, t, 34, "08DE6B6B6B6B0006", "Outbound to Internet", "mx.down.example", "192.0.2.95", None,
                    "d@corp.example", ["w@down.example"], status="DEFER", expect=False, reply="451 4.4.0 Try later")
    m34 = m
    _, t = outbound(case, trk, send, t, 35, "08DE6B6B6B6B0007", "Outbound to Internet", "mx.slow.example", "192.0.2.97", "1.2",
                    "e@corp.example", ["z@slow.example"], status="DEFER", reply="451 4.3.0 Slow down")
    # One attempt, two recipients: one accepted, one greylisted. The message counts once there.
    m = message(36, "f@corp.example", ["p@mixed.example", "q@mixed.example"], "Two", directionality="Originating")
    _, t2 = outbound(case, trk, send, t, 36, "08DE6B6B6B6B0008", "Outbound to Internet", "mx.mixed.example", "192.0.2.99", "1.2",
                     "f@corp.example", ["p@mixed.example"], m=m)
    trk.event(t2 - timedelta(milliseconds=1010), "DEFER", "SMTP", m, rcpts=["q@mixed.example"], **{"server-ip": "192.0.2.99",
              "server-hostname": "mx.mixed.example", "connector-id": "Outbound to Internet",
              "source-context": "08DE6B6B6B6B0008;%s;ClientSubmitTime:" % greylist, "recipient-status": greylist})
    expired = t2 + timedelta(hours=2)
    trk.event(expired, "FAIL", "QUEUE", m34, **{"server-hostname": "EX01", "recipient-status": "550 4.4.7 QUEUE.Expired; message expired",
              "source-context": "", "connector-id": ""})
    trk.event(expired + timedelta(milliseconds=20), "DSN", "DSN", m34, **{"server-hostname": "EX01", "reference": m34["id"]})
    case.expect("outbound", expired, None, status="failed", connector="Outbound to Internet", peer="192.0.2.95")
    send.write(case.dir)
    trk.write(case.dir)
    case.done()


def two_headers():
    case = Case("two-header-blocks", 'paths = ["MSGTRK*.LOG"]\nprotocol_paths = ["RECV*.LOG", "SEND*.LOG"]' + SITE, """
One tracking log with two header blocks: Exchange 2013's fields, then, after an upgrade to
2019 restarted the service, a new #Fields: with three more fields. The protocol log restarts
with a second header too. Rows of each block are read by their own header.""")
    recv = Protocol("RECV2026120415-1.LOG", "recv", T0, VERSIONS["2013"])
    send = Protocol("SEND2026120415-1.LOG", "send", T0, VERSIONS["2013"])
    trk = Tracking("MSGTRK2026120415-1.LOG", "2013", T0)
    t = inbound(case, trk, recv, T0 + timedelta(seconds=1), 41, "08D3000000000041", "203.0.113.41", 50041, "mx.a.example", "1.2",
                ["alice@corp.example"], subject="Before, the upgrade")
    _, t = outbound(case, trk, send, t, 42, "08D3000000000042", "Outbound to Internet", "mx.b.example", "192.0.2.42", "1.2",
                    "bob@corp.example", ["x@b.example"])
    later = t + timedelta(minutes=30)
    trk.start("2019", later)
    recv.header("SMTP Receive Protocol Log", PROTOCOL, later, VERSIONS["2019"])
    send.header("SMTP Send Protocol Log", PROTOCOL, later, VERSIONS["2019"])
    t = inbound(case, trk, recv, later + timedelta(seconds=1), 43, "08DE000000000043", "203.0.113.43", 50043, "mx.c.example", "1.3",
                ["carol@corp.example"], subject="After, the upgrade")
    _, t = outbound(case, trk, send, t, 44, "08DE000000000044", "To Partner", "mx.d.example", "198.51.100.44", "1.3",
                    "dave@corp.example", ["y@d.example"])
    recv.write(case.dir)
    send.write(case.dir)
    trk.write(case.dir)
    case.done()


def rotation():
    case = Case("rotation-gz", 'paths = ["MSGTRK*.LOG*"]\nprotocol_paths = ["SEND*.LOG*", "RECV*.LOG*"]' + SITE, """
Hourly files, the older ones compressed by an archiving job: MSGTRK2026120415-1.LOG.gz then
MSGTRK2026120416-1.LOG, and the same for the protocol logs. A message deferred in the first hour
is delivered in the second (once, delivered); an inbound session starts in one protocol file and
its message ends in the next.""")
    t15 = datetime(2026, 12, 4, 15, 0, 0, tzinfo=timezone.utc)
    t16 = datetime(2026, 12, 4, 16, 0, 0, tzinfo=timezone.utc)
    recv1 = Protocol("RECV2026120415-1.LOG", "recv", t15)
    recv2 = Protocol("RECV2026120416-1.LOG", "recv", t16)
    send1 = Protocol("SEND2026120415-1.LOG", "send", t15)
    send2 = Protocol("SEND2026120416-1.LOG", "send", t16)
    trk1 = Tracking("MSGTRK2026120415-1.LOG", "2019", t15)
    trk2 = Tracking("MSGTRK2026120416-1.LOG", "2019", t16)
    inbound(case, trk1, recv1, t15 + timedelta(minutes=5), 51, "08DE700000000051", "203.0.113.51", 50051, "mx.a.example", "1.2",
            ["alice@corp.example"])
    m, _ = outbound(case, trk1, send1, t15 + timedelta(minutes=40), 52, "08DE700000000052", "Outbound to Internet", "mx.b.example",
                    "192.0.2.52", "1.2", "bob@corp.example", ["x@b.example"], status="DEFER", expect=False, reply="451 4.7.1 Later")
    outbound(case, trk2, send2, t16 + timedelta(minutes=10), 52, "08DE700000000053", "Outbound to Internet", "mx.b.example",
             "192.0.2.52", "1.3", "bob@corp.example", ["x@b.example"], m=m, submit=False)
    # A session that starts at 15:59:59 in the first file and carries its message at 16:00.
    m = message(54, "news@c.example", ["carol@corp.example"])
    split = Protocol("tmp", "recv", t15)
    end = receive_session(split, t16 - timedelta(milliseconds=40), "08DE700000000054", FRONTEND, EX01 + ":25", "203.0.113.54:50054",
                          "mx.c.example", "1.3", [(m["sender"], m["rcpts"], m["size"], m["id"])])
    rows = split.lines[5:]
    recv1.lines += rows[:5]
    recv2.lines += rows[5:]
    trk2.event(end + timedelta(milliseconds=30), "RECEIVE", "SMTP", m, **{"client-ip": "203.0.113.54", "client-hostname": "mx.c.example",
               "server-ip": EX01, "server-hostname": "EX01", "source-context": "08DE700000000054;%s;1" % stamp(t16),
               "connector-id": FRONTEND, "original-client-ip": "203.0.113.54"})
    case.expect("inbound", end + timedelta(milliseconds=30), "1.3", peer="203.0.113.54")
    recv1.write(case.dir, gz=True)
    send1.write(case.dir, gz=True)
    trk1.write(case.dir, gz=True)
    for log in (recv2, send2, trk2):
        log.write(case.dir)
    for name in ("RECV2026120415-1.LOG", "SEND2026120415-1.LOG", "MSGTRK2026120415-1.LOG"):
        os.replace(os.path.join(case.dir, name), os.path.join(case.dir, name + ".gz"))
    case.done()


def only_tracking():
    case = Case("only-tracking", 'paths = ["MSGTRK*.LOG"]' + SITE, """
Only message tracking logs, no protocol_paths: the events are all there, but their TLS is
unknown, and the source's notes say why.""")
    trk = Tracking("MSGTRK2026120415-1.LOG", "2019", T0)
    recv = Protocol("unused", "recv", T0)
    t = inbound(case, trk, recv, T0 + timedelta(seconds=1), 61, "08DE000000000061", "203.0.113.61", 50061, "mx.a.example", "1.2",
                ["alice@corp.example"])
    _, t = outbound(case, trk, None, t, 62, "08DE000000000062", "Outbound to Internet", "mx.b.example", "192.0.2.62", "1.3",
                    "bob@corp.example", ["x@b.example"])
    trk.write(case.dir)
    for e in case.truth:
        e["tls"] = None
    case.done()


def exchange_2010():
    case = Case("exchange-2010", 'paths = ["MSGTRK*.LOG"]\nprotocol_paths = ["RECV*.LOG", "SEND*.LOG"]' + SITE.replace("corp.example", "corp.example"), """
Exchange 2010: tracking logs without network-message-id, mail received directly by the Hub
Transport server on EX01\\Default EX01 and Exchange 2010's client connector EX01\\Client EX01
(built-in: no connector). Its protocol logs record STARTTLS but not the negotiated protocol:
TLS was used, version unknown; a session without STARTTLS was plaintext.""")
    recv = Protocol("RECV20261204-1.LOG", "recv", T0, VERSIONS["2010"])
    send = Protocol("SEND20261204-1.LOG", "send", T0, VERSIONS["2010"])
    trk = Tracking("MSGTRK20261204-1.LOG", "2010", T0)
    t = inbound(case, trk, recv, T0 + timedelta(seconds=1), 71, "08CD000000000071", "203.0.113.71", 50071, "mx.a.example", "starttls",
                ["alice@corp.example"], connector=HUB)
    t = inbound(case, trk, recv, t, 72, "08CD000000000072", "192.0.2.72", 50072, "mx.b.example", None, ["bob@corp.example"], connector=HUB)
    t = inbound(case, trk, recv, t, 73, "08CD000000000073", "198.51.100.73", 50073, "laptop.home.example", "starttls",
                ["carol@corp.example"], connector=r"EX01\Client EX01", sender="carol@corp.example")
    _, t = outbound(case, trk, send, t, 74, "08CD000000000074", "Internet", "mx.d.example", "192.0.2.74", "starttls",
                    "dave@corp.example", ["y@d.example"])
    recv.write(case.dir)
    send.write(case.dir)
    trk.write(case.dir)
    case.done()


def misplaced():
    case = Case("misplaced-and-other-logs", 'paths = ["MSGTRK*.LOG", "RECV*.LOG"]\nprotocol_paths = ["SEND*.LOG", "CONNECTLOG*.LOG", "Tracking/MSGTRK*.LOG"]' + SITE, """
Files in the wrong list: a receive protocol log listed in `paths` and a tracking log in
`protocol_paths` are read by what their headers say, with a warning each; a connectivity log
is not read at all (a warning). The protocol log read after the tracking log still gives its
session's TLS: the event waits for it.""")
    os.makedirs(os.path.join(case.dir, "Tracking"), exist_ok=True)
    recv = Protocol("RECV2026120415-1.LOG", "recv", T0)
    send = Protocol("SEND2026120415-1.LOG", "send", T0)
    trk = Tracking("MSGTRK2026120415-1.LOG", "2019", T0)
    trk2 = Tracking("Tracking/MSGTRK2026120415-2.LOG", "2019", T0)
    t = inbound(case, trk, recv, T0 + timedelta(seconds=1), 81, "08DE000000000081", "203.0.113.81", 50081, "mx.a.example", "1.2",
                ["alice@corp.example"])
    _, t = outbound(case, trk2, send, t, 82, "08DE000000000082", "Outbound to Internet", "mx.b.example", "192.0.2.82", "1.3",
                    "bob@corp.example", ["x@b.example"])
    conn = Log("CONNECTLOG20261204-1.LOG")
    conn.header("Transport Connectivity Log", "date-time,session,source,Destination,direction,description".split(","), T0)
    conn.raw("2026-12-04T15:00:01.000Z,08DE000000000082,SMTP,mx.b.example,+,Outbound to Internet;QueueLength=1")
    conn.raw("2026-12-04T15:00:02.000Z,08DE000000000082,SMTP,mx.b.example,>,192.0.2.82:25")
    for log in (recv, send, trk, trk2, conn):
        log.write(case.dir)
    case.done()


def edge():
    case = Case("edge", 'paths = ["MSGTRK*.LOG"]\nprotocol_paths = ["RECV*.LOG", "SEND*.LOG"]' + SITE, """
An Edge Transport server: mail from the internet on its built-in Default internal receive
connector, relayed to the Mailbox servers through EdgeSync - Inbound to Default-First-Site-Name
(internal: not outbound); mail from the Mailbox servers (an internal peer: counted, and reports
drop it as internal) sent to the internet through EdgeSync - Default-First-Site-Name to
Internet, which is the organization's connector.""")
    recv = Protocol("RECV2026120415-1.LOG", "recv", T0)
    send = Protocol("SEND2026120415-1.LOG", "send", T0)
    trk = Tracking("MSGTRK2026120415-1.LOG", "2019", T0)
    global EX01
    saved = EX01
    EX01 = "192.0.2.10"
    edge_in = r"EDGE01\Default internal receive connector EDGE01"
    t = inbound(case, trk, recv, T0 + timedelta(seconds=1), 91, "08DE000000000091", "203.0.113.91", 50091, "mx.a.example", "1.2",
                ["alice@corp.example"], connector=edge_in)
    m = message(91, "news@a.example", ["alice@corp.example"])
    trk.event(t, "SEND", "SMTP", m, **{"server-ip": "10.0.0.5", "server-hostname": "EX01.corp.example",
              "source-context": "08DE000000000092;250 2.6.0 Queued mail for delivery;ClientSubmitTime:",
              "connector-id": "EdgeSync - Inbound to Default-First-Site-Name"})
    m = message(93, "bob@corp.example", ["x@b.example"], directionality="Originating")
    t = inbound(case, trk, recv, t + timedelta(seconds=5), 93, "08DE000000000093", "10.0.0.5", 50093, "EX01.corp.example", "1.2",
                ["x@b.example"], connector=edge_in, sender="bob@corp.example")
    outbound(case, trk, send, t, 93, "08DE000000000094", "EdgeSync - Default-First-Site-Name to Internet", "mx.b.example",
             "192.0.2.94", "1.3", "bob@corp.example", ["x@b.example"], m=m, submit=False)
    EX01 = saved
    for log in (recv, send, trk):
        log.write(case.dir)
    case.done()


def bad_input():
    case = Case("bad-input", 'paths = ["MSGTRK*.LOG"]\nprotocol_paths = ["RECV*.LOG"]\nmax_line_bytes = 2000' + SITE, """
Damaged logs: a data line before any #Fields:, bad dates, a row with a field too many and one
cut short, an unterminated quote, NUL bytes (as Windows leaves after a crash), invalid UTF-8,
a bad client IP and an over-long line. Each is skipped and named; the good rows around them
still count.""")
    recv = Protocol("RECV2026120415-1.LOG", "recv", T0)
    trk = Log("MSGTRK2026120415-1.LOG")
    trk.raw("2026-12-04T15:00:00.000Z,203.0.113.1,x,10.0.0.5,EX01,,,SMTP,RECEIVE,1,<a@x>,n1,a@corp.example")
    trk2 = Tracking("unused", "2019", T0)
    trk.lines += trk2.lines
    trk2.lines = []
    t = inbound(case, trk2, recv, T0 + timedelta(seconds=1), 101, "08DE000000000101", "203.0.113.101", 50101, "mx.a.example", "1.2",
                ["alice@corp.example"])
    good = trk2.lines[0]
    trk.lines += trk2.lines
    fields = good.split(",")
    bad_date = ",".join(["2026-12-34T15:00:01.000Z"] + fields[1:])
    extra = good + ",extra"
    short = ",".join(fields[:12])
    unterminated = good.replace("Status report", '"Status, report')
    bad_ip = ",".join(fields[:1] + ["203.0.113.999"] + fields[2:])
    trk.lines += [bad_date, extra, short, unterminated, "\0" * 40, bad_ip]
    trk.lines.append("INVALID_UTF8_PLACEHOLDER")
    trk.lines.append(good.replace("Status report", "x" * 2100))
    for log in (recv, trk):
        log.write(case.dir)
    path = os.path.join(case.dir, trk.path)
    data = open(path, "rb").read().replace(b"INVALID_UTF8_PLACEHOLDER", good.replace("Status report", "Caf\xe9").encode("utf-8").replace(b"\xc3\xa9", b"\xe9"))
    open(path, "wb").write(data)
    case.done()


def bad_protocol():
    case = Case("bad-protocol-input", 'paths = ["MSGTRK*.LOG"]\nprotocol_paths = ["RECV*.LOG"]' + SITE, """
Damaged protocol log lines: an unknown event, too few fields, a date without its Z, a session id
that is not 16 hex digits, a TLS line naming no known protocol, and XPROXYFROM without SID=. Each
is skipped and named. The session whose TLS line was damaged still shows STARTTLS: TLS of an
unknown version.""")
    recv = Protocol("RECV2026120415-1.LOG", "recv", T0)
    trk = Tracking("MSGTRK2026120415-1.LOG", "2019", T0)
    inbound(case, trk, recv, T0 + timedelta(seconds=1), 111, "08DE000000000111", "203.0.113.111", 50111, "mx.a.example", "1.2",
            ["alice@corp.example"], expect=False)
    case.expect("inbound", datetime(2026, 12, 4, 15, 0, 1, 204000, tzinfo=timezone.utc), "unknown", peer="203.0.113.111")
    lines = recv.lines
    tls = next(i for i, l in enumerate(lines) if "TLS protocol" in l)
    lines[tls] = lines[tls].replace("SP_PROT_TLS1_2_SERVER", "SP_PROT_TLS9_SERVER")
    bad = [
        "2026-12-04T15:00:09.000Z,%s,08DE000000000102,0,10.0.0.5:25,203.0.113.2:1,?,," % FRONTEND,
        "not,a,protocol,line",
        "2026-12-04 15:00:09,%s,08DE000000000103,0,10.0.0.5:25,203.0.113.2:1,+,," % FRONTEND,
        "2026-12-04T15:00:09.000Z,%s,08DE0000001,0,10.0.0.5:25,203.0.113.2:1,+,," % FRONTEND,
        "2026-12-04T15:00:10.000Z,%s,08DE000000000104,0,10.0.0.5:2525,10.0.0.5:1,<,XPROXYFROM IP=203.0.113.2 PORT=1," % HUB,
    ]
    recv.lines += bad
    for log in (recv, trk):
        log.write(case.dir)
    case.done()


if __name__ == "__main__":
    for make in (inbound_tls, partner_connector, outbound_case, deferred_case, two_headers, rotation, only_tracking,
                 exchange_2010, misplaced, edge, bad_input, bad_protocol):
        make()

#!/usr/bin/env python3
"""Generate the made-up mail traffic that `mailflow demo` reports on.

Writes two weeks of events (Berlin days 2026-11-16..29) next to this file:
  mx1.jsonl          the site's gateway "mx1", canonical JSON Lines, plus 4 broken lines
  partner-relay.csv  a partner relay, the CSV form of the same format
Traffic is shaped so that every insight in mailflow.toml fires for the demo week
(2026-11-23..29) against the week before. Stdlib only, fixed seed: the output is
the same on every run. Rerun with:  python3 demo/generate.py
"""

import csv
import json
import math
import random
from datetime import date, datetime, timedelta
from pathlib import Path

random.seed(20261129)
HERE = Path(__file__).resolve().parent
WEEKS = [date(2026, 11, 16), date(2026, 11, 23)]  # previous period, demo week (Mondays)
BERLIN = timedelta(hours=1)  # CET all month: a Berlin day starts at 23:00 UTC

CIPHERS = {
    "tls1_3": ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"],
    "tls1_2": ["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
               "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"],
    "tls1_1": ["ECDHE-RSA-AES256-SHA", "DHE-RSA-AES256-SHA"],
    "tls1_0": ["ECDHE-RSA-AES256-SHA", "AES256-SHA", "DES-CBC3-SHA"],
    "ssl3": ["DES-CBC3-SHA", "AES256-SHA"],
}
# Relative traffic per local hour: office hours, or mail that arrives around the clock.
OFFICE = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 13, 11, 13, 14, 13, 11, 8, 5, 4, 3, 2, 2, 1]
ALLDAY = [3, 3, 3, 3, 3, 3, 4, 6, 8, 9, 9, 9, 8, 9, 9, 8, 8, 7, 6, 6, 5, 5, 4, 4]
STAFF = ["anna.schmidt", "jonas.weber", "lea.fischer", "max.mueller", "sofia.wagner", "paul.becker",
         "mia.hoffmann", "ben.schulz", "emma.koch", "noah.richter", "sales", "invoices", "hr"]
SENDERS = ["info", "news", "billing", "support", "j.doe", "m.garcia", "orders", "noreply", "team"]
INTERNET = [  # (host, ip, domain) of next hops and of senders out on the internet
    ("mx.adatum.example", "198.51.100.21", "adatum.example"),
    ("mail.tailspintoys.example", "198.51.100.22", "tailspintoys.example"),
    ("mx1.woodgrovebank.example", "198.51.100.23", "woodgrovebank.example"),
    ("mx.litwareinc.example", "198.51.100.24", "litwareinc.example"),
    ("mx.wingtiptoys.example", "203.0.113.24", "wingtiptoys.example"),
    ("mx.alpineskihouse.example", "203.0.113.25", "alpineskihouse.example"),
    ("in1.mailhost.example", "2001:db8:4860::1b", "mailhost.example"),
    ("in2.mailhost.example", "2001:db8:4860::1c", "mailhost.example"),
]
SENDING = [  # inbound internet peers, including a big provider's outlook-style hosts
    ("mail.adatum.example", "198.51.100.31", "adatum.example"),
    ("mail-am6eur05on2041.outbound.protection.outlook.example", "2001:db8:3000::41", "fourthcoffee.example"),
    ("mail-db8eur05on2103.outbound.protection.outlook.example", "2001:db8:3000::103", "margiestravel.example"),
    ("smtp.woodgrovebank.example", "198.51.100.33", "woodgrovebank.example"),
    ("out.mailhost.example", "2001:db8:4860::40", "mailhost.example"),
    ("mta7.news.lucernepublishing.example", "203.0.113.37", "lucernepublishing.example"),
    ("mail.litwareinc.example", "198.51.100.34", "litwareinc.example"),
]

# One flow per kind of traffic. per_day = weekday messages (previous week, demo week);
# tls and status are exact weekly shares; until = last day with traffic.
FLOWS = [
    dict(src="mx1", dir="outbound", transport="smtp", per_day=(40, 75), weekend=0.25,  # Partner Contoso: volume up
         peers=[("mx1.contoso.com", "192.0.2.10", "contoso.com"), ("mx2.contoso.com", "192.0.2.11", "contoso.com")],
         tls={"tls1_3": 65, "tls1_2": 35}, trust={"verified": 55, "trusted": 45}, status={"delivered": 98, "deferred": 2}),
    dict(src="mx1", dir="outbound", transport="smtp", per_day=(11, 11), weekend=0.3,  # Fabrikam legacy: SSLv3 and TLS 1.0, failing
         peers=[("mail.fabrikam.com", "192.0.2.20", "fabrikam.com"), ("mx-old.fabrikam.com", "192.0.2.21", "fabrikam.com")],
         tls={"ssl3": 4, "tls1_0": 58, "tls1_1": 14, "tls1_2": 24}, trust={"trusted": 50, "untrusted": 50},
         status={"delivered": 84, "deferred": 10, "failed": 6}),
    dict(src="mx1", dir="outbound", transport="smtp", per_day=(85, 85), weekend=0.35,  # internet: no connector
         peers=INTERNET, tls={"tls1_3": 45, "tls1_2": 47, "none": 8}, trust={"trusted": 75, "untrusted": 20, "verified": 5},
         status={"delivered": 95, "deferred": 3, "failed": 2}),
    dict(src="mx1", dir="inbound", service="smtpd", per_day=(13, 13), weekend=0.3,  # Inbound from Northwind: plaintext
         peers=[("mail1.northwind.example", "198.51.100.60", "northwind.example"),
                ("mail2.northwind.example", "198.51.100.61", "northwind.example")],
         plain_peers=[("smtp-old.northwind.example", "198.51.100.62", "northwind.example")],
         tls={"none": 35, "tls1_2": 50, "tls1_3": 15}, trust={"anonymous": 1}),
    dict(src="mx1", dir="inbound", service="submission", per_day=(22, 22), weekend=0.2,  # Submission: staff clients
         peers=[("dsl-198-51-100-90.isp.example", "198.51.100.90", "corp.example"), (None, "2001:db8:a0b:12f0::1", "corp.example"),
                ("cust-203-0-113-77.fiber.example", "203.0.113.77", "corp.example")],
         tls={"tls1_3": 1}, trust={"anonymous": 1}),
    dict(src="mx1", dir="inbound", service="smtpd", per_day=(3, 3), weekend=0.34, until=date(2026, 11, 24),  # Old scanner
         peers=[(None, "203.0.113.5", "corp.example")], tls={"none": 1}, local=["scanner"]),
    dict(src="mx1", dir="inbound", service="smtpd", per_day=(0, 22), weekend=0.7, hours=ALLDAY,  # New SaaS
         peers=[("o1.mailer.saas.example", "203.0.113.40", "saas.example"), ("o2.mailer.saas.example", "203.0.113.41", "saas.example")],
         tls={"tls1_2": 1}, trust={"anonymous": 1}, local=["notifications"]),
    dict(src="mx1", dir="inbound", service="smtpd", per_day=(90, 90), weekend=0.6, hours=ALLDAY,  # internet: no connector
         peers=SENDING, tls={"tls1_3": 50, "tls1_2": 45, "none": 5}, trust={"anonymous": 1},
         status={"delivered": 96, "rejected": 4}),
    dict(src="mx1", dir="inbound", service="smtpd", per_day=(5, 5), weekend=0.4,  # internal apps: not in reports
         peers=[("app01.corp.example", "10.0.4.21", "corp.example"), ("erp.corp.example", "10.0.8.5", "corp.example")],
         tls={"tls1_2": 60, "none": 40}, trust={"anonymous": 1}, local=["alerts", "erp"]),
    dict(src="partner-relay", dir="outbound", transport="partner-out", per_day=(45, 45), weekend=0.3,  # Partner relay
         peers=[("relay.northwind.example", "198.51.100.70", "northwind.example"),
                ("relay2.northwind.example", "198.51.100.71", "northwind.example")],
         tls={"tls1_2": 1}, trust={"verified": 70, "trusted": 30}, status={"delivered": 99, "deferred": 1}),
    dict(src="partner-relay", dir="inbound", service="smtpd", per_day=(40, 40), weekend=0.3,  # Partner relay in: unlogged TLS
         peers=[("out.proseware.example", "203.0.113.50", "proseware.example"),
                ("mta.fineartschool.example", "203.0.113.51", "fineartschool.example"),
                ("smtp.southridgevideo.example", "2001:db8:5e::25", "southridgevideo.example")],
         tls={"tls1_2": 45, "tls1_3": 15, "unknown": 20, None: 20}, trust={"anonymous": 1}),
]


def deck(n, weights):
    """n items in exactly the given proportions (largest remainder), shuffled."""
    total = sum(weights.values())
    counts = {k: math.floor(n * w / total) for k, w in weights.items()}
    by_remainder = sorted(weights, key=lambda k: n * weights[k] / total - counts[k], reverse=True)
    for k in by_remainder[: n - sum(counts.values())]:
        counts[k] += 1
    items = [k for k, c in counts.items() for _ in range(c)]
    random.shuffle(items)
    return items


def token(n, alphabet="0123456789abcdefghijklmnopqrstuvwxyz"):
    return "".join(random.choice(alphabet) for _ in range(n))


def queue_id(t):
    """A Postfix long queue id: seconds and microseconds in base 51, 'z', inode."""
    alphabet = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy"
    secs, out = int(t.timestamp()), ""
    while secs:
        secs, digit = divmod(secs, len(alphabet))
        out = alphabet[digit] + out
    return out + token(4, alphabet) + "z" + token(3, alphabet)


def times(flow, week):
    """Event times (UTC) of one flow over the 7 Berlin days from `week`."""
    out = []
    for offset in range(7):
        day = week + timedelta(days=offset)
        if day > flow.get("until", day):
            break
        base = flow["per_day"][WEEKS.index(week)] * (flow["weekend"] if day.weekday() >= 5 else 1)
        for _ in range(round(base * random.uniform(0.85, 1.15))):
            hour = random.choices(range(24), flow.get("hours", OFFICE))[0]
            local = datetime(day.year, day.month, day.day, hour, random.randrange(60), random.randrange(60))
            out.append(local - BERLIN)
    return out


def event(flow, t, version, status):
    host, ip, domain = random.choice(flow.get("plain_peers") if version == "none" and "plain_peers" in flow else flow["peers"])
    outbound = flow["dir"] == "outbound"
    ev = {"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "direction": flow["dir"]}
    if version is not None:  # None: the source did not log TLS at all
        ev["tls"] = {"version": version}
        if version in CIPHERS:
            ev["tls"]["cipher"] = random.choice(CIPHERS[version])
            ev["tls"]["trust"] = random.choices(list(flow["trust"]), list(flow["trust"].values()))[0]
    ev["peer"] = {k: v for k, v in (("host", host), ("ip", ip), ("port", 25 if outbound else None)) if v}
    ev["service" if not outbound else "transport"] = flow.get("service") or flow["transport"]
    if outbound or flow.get("service") == "submission":
        sender = f"{random.choice(STAFF)}@corp.example"
        rcpt_domains = [domain] if outbound else [random.choice(INTERNET)[2]]
    else:
        sender = f"{random.choice(flow.get('local', SENDERS))}@{domain}"
        rcpt_domains = ["corp.example"]
    ev.update(sender=sender, recipients=random.choices([1, 2, 3, 5], [80, 12, 5, 3])[0], recipient_domains=rcpt_domains)
    if status != "rejected":  # rejected before DATA: no size, no queue file
        ev["size"] = int(min(5_000_000, max(2_000, random.lognormvariate(math.log(30_000), 1.2))))
    ev["status"] = status
    if status != "rejected":
        ev["message_id"] = f"<{token(16)}@{sender.rsplit('@', 1)[1]}>"
        ev["queue_id"] = queue_id(t)
    return ev


def generate():
    events = {"mx1": [], "partner-relay": []}
    for flow in FLOWS:
        for week in WEEKS:
            ts = times(flow, week)
            for t, version, status in zip(ts, deck(len(ts), flow["tls"]), deck(len(ts), flow.get("status", {"delivered": 1}))):
                events[flow["src"]].append(event(flow, t, version, status))
    # Markup in a peer's host name and sender, to show that reports escape what they print.
    internet_in = next(f for f in FLOWS if f["peers"] is SENDING)
    evil = event(internet_in, datetime(2026, 11, 25, 13, 7, 41), "tls1_2", "delivered")
    evil["peer"] = {"host": "<script>alert(1)</script>.evil.example", "ip": "198.51.100.66"}
    evil["sender"] = '"><img src=x onerror=alert(1)>@evil.example'
    evil["message_id"] = "<x1@evil.example>"
    events["mx1"].append(evil)
    for evs in events.values():
        evs.sort(key=lambda e: e["time"])
    return events


def write_jsonl(path, evs):
    lines = [json.dumps(e, separators=(",", ":")) for e in evs]
    # Broken lines the collector must skip and count, spread through the file.
    bad = [lambda e: json.dumps(e, separators=(",", ":"))[:97],                  # truncated
           lambda e: json.dumps({**e, "direction": "sideways"}, separators=(",", ":")),
           lambda e: json.dumps({**e, "subject": "Q4 numbers"}, separators=(",", ":")),  # unknown field
           lambda e: json.dumps({**e, "time": e["time"].rstrip("Z")}, separators=(",", ":"))]  # no offset
    for i, make in reversed(list(enumerate(bad))):  # from the end, so positions stay put
        at = len(evs) * (2 * i + 1) // 8
        lines.insert(at, make(evs[at]))
    path.write_text("\n".join(lines) + "\n")


COLUMNS = ["time", "direction", "connector", "tls.version", "tls.cipher", "tls.trust", "peer.host", "peer.ip",
           "peer.port", "service", "transport", "sender", "recipients", "recipient_domains", "size", "status",
           "message_id", "queue_id"]


def write_csv(path, evs):
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(COLUMNS)
        for e in evs:
            flat = {f"{k}.{sub}": v for k in ("tls", "peer") for sub, v in e.get(k, {}).items()}
            flat.update({k: v for k, v in e.items() if k not in ("tls", "peer")})
            flat["recipient_domains"] = ";".join(e["recipient_domains"])
            out.writerow([flat.get(c, "") for c in COLUMNS])


if __name__ == "__main__":
    events = generate()
    write_jsonl(HERE / "mx1.jsonl", events["mx1"])
    write_csv(HERE / "partner-relay.csv", events["partner-relay"])
    for name, evs in events.items():
        print(f"{name}: {len(evs)} events")

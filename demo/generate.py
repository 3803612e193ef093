#!/usr/bin/env python3
"""Generate the partner relay's export that `mailflow demo` reports on.

Writes two weeks of events (Berlin days 2026-11-16..29) next to this file:
  partner-relay.csv         a partner relay, the CSV form of mailflow's canonical events
  m365-connectors.csv       the Microsoft 365 tenant's connector report as the Exchange admin
                            center exports it: daily totals per connector and TLS version, UTF-16
The site's own gateway, mx1, is a Postfix log from the log generator (see README.md).
Stdlib only, fixed seed: the output is the same on every run. Rerun with:
  python3 demo/generate.py
"""

import csv
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

# One flow per kind of traffic. per_day = weekday messages (previous week, demo week);
# tls and status are exact weekly shares; until = last day with traffic.
FLOWS = [
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
    events = {"partner-relay": []}
    for flow in FLOWS:
        for week in WEEKS:
            ts = times(flow, week)
            for t, version, status in zip(ts, deck(len(ts), flow["tls"]), deck(len(ts), flow.get("status", {"delivered": 1}))):
                events[flow["src"]].append(event(flow, t, version, status))
    for evs in events.values():
        evs.sort(key=lambda e: e["time"])
    return events


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


# The Microsoft 365 tenant's connectors: (direction, name, weekday messages per week, TLS shares).
M365_CONNECTORS = [
    ("Inbound", "From Adatum (partner)", (60, 64), {"TLS 1.2": 70, "TLS 1.3": 30}),
    ("Outbound", "To Litware (forced TLS)", (35, 38), {"TLS 1.2": 100}),
    ("Outbound", "To Tailspin (opportunistic)", (20, 22), {"TLS 1.2": 60, "TLS 1.0": 25, "No TLS": 15}),
]
M365_COLUMNS = ["Date", "Connector direction", "Connector name", "No TLS", "TLS 1.0", "TLS 1.1", "TLS 1.2",
                "TLS 1.3", "Volume"]


def write_m365_report(path):
    """One row per day and connector; the TLS columns add up to Volume, as the export has them."""
    rows = []
    for week in WEEKS:
        for offset in range(7):
            day = week + timedelta(days=offset)
            for direction, name, per_day, shares in M365_CONNECTORS:
                volume = round(per_day[WEEKS.index(week)] * (0.3 if day.weekday() >= 5 else 1) * random.uniform(0.85, 1.15))
                counts = dict(zip(shares, [0] * len(shares)))
                for version in deck(volume, shares):
                    counts[version] += 1
                rows.append([day.strftime("%m/%d/%Y"), direction, name]
                            + [str(counts.get(c, 0)) for c in M365_COLUMNS[3:8]] + [str(volume)])
    text = "\r\n".join(",".join(f'"{v}"' for v in row) for row in [M365_COLUMNS] + rows) + "\r\n"
    path.write_bytes(text.encode("utf-16"))  # with a byte-order mark, as Windows writes it


if __name__ == "__main__":
    events = generate()
    write_csv(HERE / "partner-relay.csv", events["partner-relay"])
    write_m365_report(HERE / "m365-connectors.csv")
    for name, evs in events.items():
        print(f"{name}: {len(evs)} events")

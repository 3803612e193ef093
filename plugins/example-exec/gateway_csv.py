#!/usr/bin/env python3
"""A mailflow exec plugin: turns a mail gateway's CSV export into canonical events.

mailflow runs this program once per report (`[[collector]] type = "exec"`). It gets the report
range and the section's `settings` as one JSON document on standard input, prints one event per
line on standard output (docs/events.md) and logs on standard error; the first word of a log
line (ERROR, WARN, INFO, DEBUG) is its level in mailflow's log. Exit code 0 means the output is
complete; anything else marks the source partial, quoting the last lines of standard error.

The export looks like this (times in the gateway's local time, `utc_offset`):

    date,time,direction,client,tls,bytes,result
    2026-12-01,08:00:00,in,mx1.contoso.com[192.0.2.7],TLSv1.3,48213,ok

Standard library only; Python 3.7 or later.
"""

import csv
import json
import sys
from datetime import datetime

TLS = {"": "unknown", "none": "none", "SSLv3": "ssl3", "TLSv1": "tls1_0", "TLSv1.0": "tls1_0", "TLSv1.1": "tls1_1",
       "TLSv1.2": "tls1_2", "TLSv1.3": "tls1_3"}
STATUS = {"ok": "delivered", "defer": "deferred", "bounce": "failed", "reject": "rejected"}
DIRECTION = {"in": "inbound", "out": "outbound"}


def log(level, message):
    print(f"{level} {message}", file=sys.stderr, flush=True)


def instant(text):
    """An RFC 3339 instant as mailflow writes it (`2026-12-01T00:00:00Z`)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def event(row, offset, path, line):
    """The canonical event of one CSV row; KeyError or ValueError if the row is not valid."""
    host, _, ip = row["client"].rstrip("]").partition("[")
    return {
        "time": f"{row['date']}T{row['time']}{offset}",
        "direction": DIRECTION[row["direction"]],
        "tls": {"version": TLS[row["tls"]]},
        "peer": {"host": host or None, "ip": ip or None},
        "size": int(row["bytes"]),
        "status": STATUS[row["result"]],
        # Where the event came from, so a report can point at the row.
        "evidence": [{"file": path, "line": line}],
    }


def main():
    request = json.load(sys.stdin)
    settings = request["settings"]
    path = settings.get("path")
    if not path:
        log("ERROR", "settings.path is missing: name the gateway's CSV export")
        return 2
    offset = settings.get("utc_offset", "+00:00")
    start, end = instant(request["start"]), instant(request["end"])

    # Announce the protocol first: a mailflow that speaks another stops this program at once.
    print(json.dumps({"mailflow_protocol": 1}), flush=True)
    printed = bad = 0
    try:
        with open(path, newline="", encoding="utf-8") as export:
            rows = csv.DictReader(export)
            for row in rows:
                # The header is line 1; the reader counts the lines it has read.
                line = rows.line_num
                try:
                    out = event(row, offset, path, line)
                    when = datetime.fromisoformat(out["time"])
                except (KeyError, ValueError, AttributeError) as e:
                    bad += 1
                    log("WARN", f"{path}:{line}: not a gateway row ({e!r}); skipped")
                    continue
                if start <= when < end:
                    print(json.dumps(out, separators=(",", ":")))
                    printed += 1
    except OSError as e:
        log("ERROR", f"cannot read {path}: {e.strerror}")
        return 1
    log("INFO", f"{printed} events from {path}; {bad} rows skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

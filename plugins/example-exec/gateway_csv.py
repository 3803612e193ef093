#!/usr/bin/env python3
"""A mailflow exec plugin: turns a mail gateway's CSV export into canonical events.

mailflow runs this program once per report (`[[collector]] type = "exec"`). It gets the report
range and the section's `settings` as one JSON document on standard input, prints one event per
line on standard output (docs/events.md) and logs on standard error; the first word of a log
line (ERROR, WARN, INFO, DEBUG) is its level in mailflow's log. A row it cannot read it reports
on standard output as {"mailflow_skip":{"at":"<file>:<line>","why":"..."}}, which mailflow counts
as a skipped record of the source. Exit code 0 means the output is complete; anything else marks
the source partial, quoting the last lines of standard error.

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


def skip(at, why):
    """Tells mailflow a row was skipped, so the report counts it (and shows where and why)."""
    print(json.dumps({"mailflow_skip": {"at": at, "why": why}}, separators=(",", ":")))


def known(table, row, column):
    """The canonical word for `row[column]`; ValueError naming the column if there is none."""
    value = row[column]
    if value not in table:
        expected = ", ".join(repr(word) for word in table)
        raise ValueError(f"{column} {value!r} is not one of {expected}")
    return table[value]


def event(row, offset, path, line):
    """The canonical event of one CSV row, and its instant; ValueError saying what is wrong."""
    if None in row:  # more values than the header has names: the rest are under None
        raise ValueError(f"expected {len(row) - 1} columns, found {len(row) - 1 + len(row[None])}")
    if None in row.values():  # fewer: the missing ones are None
        raise ValueError(f"expected {len(row)} columns, found {sum(v is not None for v in row.values())}")
    try:
        when = datetime.fromisoformat(f"{row['date']}T{row['time']}{offset}")
    except ValueError:
        raise ValueError(f"expected a date and time like 2026-12-01,08:00:00, not {row['date']},{row['time']}") from None
    if not (row["bytes"].isascii() and row["bytes"].isdigit()):
        raise ValueError(f"bytes {row['bytes']!r} is not a number")
    host, _, ip = row["client"].rstrip("]").partition("[")
    return when, {
        "time": f"{row['date']}T{row['time']}{offset}",
        "direction": known(DIRECTION, row, "direction"),
        "tls": {"version": known(TLS, row, "tls")},
        "peer": {"host": host or None, "ip": ip or None},
        "size": int(row["bytes"]),
        "status": known(STATUS, row, "result"),
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
    try:
        datetime.fromisoformat(f"2026-01-01T00:00:00{offset}")
    except (TypeError, ValueError):
        log("ERROR", f"settings.utc_offset {offset!r} is not an offset like +01:00")
        return 2
    start, end = instant(request["start"]), instant(request["end"])

    # Announce the protocol first: a mailflow that speaks another stops this program at once.
    print(json.dumps({"mailflow_protocol": 1}), flush=True)
    printed = bad = 0
    try:
        # utf-8-sig: an export saved with a byte-order mark (as Excel and Windows tools write
        # one) reads like one without; otherwise the first column would not be called `date`.
        with open(path, newline="", encoding="utf-8-sig") as export:
            rows = csv.DictReader(export)
            missing = {"date", "time", "direction", "client", "tls", "bytes", "result"} - set(rows.fieldnames or [])
            if missing:
                log("ERROR", f"{path} is not a gateway export: its header lacks {', '.join(sorted(missing))}")
                return 1
            for row in rows:
                # The header is line 1; the reader counts the lines it has read.
                line = rows.line_num
                try:
                    when, out = event(row, offset, path, line)
                except ValueError as e:
                    # Not only logged: mailflow counts it as a skipped record of this source.
                    bad += 1
                    skip(f"{path}:{line}", str(e))
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

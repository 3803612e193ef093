"""Send a reproducible mix of real SMTP sessions through the local OpenSMTPD and write the
ground truth (one JSON object per message) to OUT.jsonl.

usage: send.py N SEED OUT.jsonl

Inbound sessions are plaintext: Debian 12's OpenSMTPD 6.8 cannot do STARTTLS as a server with
OpenSSL 3. Outbound deliveries carry the TLS version the relay offers. Messages are submitted
with swaks (internal clients relay on 127.0.0.1:25) or, for a few, with the local `sendmail`
(smtpctl), so some sessions are `address=local`. Each truth line records the queue id
OpenSMTPD answered with (`250 2.0.0 <msgid> Message accepted for delivery`).
"""
import json, os, random, re, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

N, SEED, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(SEED)
DEST = [("partner13.test", "TLSv1.3", "sent", 40), ("partner12.test", "TLSv1.2", "sent", 20),
        ("legacy10.test", "TLSv1", "sent", 8), ("legacy11.test", "TLSv1.1", "sent", 5),
        ("plain.test", None, "sent", 12), ("reject.test", "TLSv1.3", "bounced", 5),
        ("defer.test", None, "deferred", 5), ("flaky.test", "TLSv1.2", "sent", 6)]
ACCEPTED = re.compile(r"250 2\.0\.0:? ([0-9a-f]{8}) Message accepted for delivery")


def body(n):
    # Lines stay under 998 octets.
    text = "x" * n
    return "\n".join(text[i:i + 76] for i in range(0, n, 76))


def pick(table):
    return rnd.choices(table, weights=[row[-1] for row in table])[0]


def outbound_rcpts():
    dests = [pick(DEST)]
    if rnd.random() < 0.1:
        d2 = pick(DEST)
        if d2[0] != dests[0][0]:
            dests.append(d2)
    rcpts, deliveries = [], []
    for d in dests:
        xs = ["user%d@%s" % (k, d[0]) for k in rnd.sample(range(1, 999), rnd.choice([1, 1, 2, 3]))]
        rcpts.extend(xs)
        deliveries.append(dict(rcpt=",".join(xs), dest=d[0], tls=d[1], status=d[2]))
    return rcpts, deliveries


jobs = []
for i in range(N):
    mid = "gt-%d-%05d@corpus.test" % (SEED, i)
    r = rnd.random()
    # Local senders exist, so the bounces of refused deliveries are delivered to them.
    sender = "%s@corp.test" % rnd.choice(["alice", "bob"])
    if r < 0.45:  # inbound from the internet or a partner range
        net = "127.0.2" if rnd.random() < 0.3 else "127.0.1"
        ip = "%s.%d" % (net, rnd.randint(2, 250))
        rcpts = rnd.sample(["alice@corp.test", "bob@corp.test"], rnd.choice([1, 1, 1, 2]))
        sender = "sender%d@ext%d.example" % (i, rnd.randint(1, 40))
        truth = dict(msgid=mid, kind="inbound", client=ip, port=25, tls_in=None,
                     deliveries=[dict(rcpt=x, dest="local", tls=None, status="sent") for x in rcpts])
    elif r < 0.50:  # relay attempt from outside: refused at RCPT
        ip = "127.0.1.%d" % rnd.randint(2, 250)
        rcpts = ["victim@partner13.test"]
        sender = "sender%d@ext%d.example" % (i, rnd.randint(1, 40))
        truth = dict(msgid=mid, kind="rejected", client=ip, port=25, tls_in=None, deliveries=[])
    elif r < 0.95:  # an internal client relaying out
        rcpts, deliveries = outbound_rcpts()
        truth = dict(msgid=mid, kind="outbound", client="127.0.0.10", port=25, tls_in=None, deliveries=deliveries)
    else:  # a local submission (smtpctl enqueue, an address=local session)
        rcpts, deliveries = outbound_rcpts()
        truth = dict(msgid=mid, kind="outbound", client="local", port=None, tls_in=None, deliveries=deliveries)
    text = body(rnd.randint(10, 4000))
    if truth["client"] == "local":
        message = "From: <%s>\nTo: %s\nMessage-Id: <%s>\nSubject: corpus message %d\n\n%s\n" % (
            sender, ", ".join(rcpts), mid, i, text)
        cmd = ["/usr/sbin/sendmail", "-f", sender] + rcpts
        jobs.append((truth, cmd, message))
        continue
    cmd = ["swaks", "--server", "127.0.0.1:25", "--local-interface", truth["client"],
           "--from", sender, "--to", ",".join(rcpts), "--header", "Message-Id: <%s>" % mid,
           "--header", "Subject: corpus message %d" % i, "--body", text]
    jobs.append((truth, cmd, None))


def run(job):
    truth, cmd, stdin = job
    p = subprocess.run(cmd, capture_output=True, text=True, input=stdin)
    truth["rc"] = p.returncode
    if stdin is not None:
        truth["queued"] = p.returncode == 0
        truth["queue_id"] = None
    else:
        m = ACCEPTED.search(p.stdout)
        truth["queued"] = m is not None
        truth["queue_id"] = m.group(1) if m else None
    return truth


with ThreadPoolExecutor(8) as ex:
    results = list(ex.map(run, jobs))
with open(OUT, "w") as f:
    for t in results:
        f.write(json.dumps(t) + "\n")
print("sent", len(results), "queued", sum(t["queued"] for t in results))

"""Send a reproducible mix of real SMTP sessions to a local MTA, several transactions per
connection for some, and write the ground truth (one JSON object per message).

usage: send.py N SEED OUT.jsonl
Negotiated TLS versions are read from the client socket, so the truth is what was used."""
import json, random, smtplib, ssl, sys
from concurrent.futures import ThreadPoolExecutor

N, SEED, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(SEED)
TLS_IN = [(ssl.TLSVersion.TLSv1_3, 50), (ssl.TLSVersion.TLSv1_2, 25), (ssl.TLSVersion.TLSv1, 5),
          (ssl.TLSVersion.TLSv1_1, 3), (None, 17)]
DEST = [("partner13.test", "TLSv1.3", "sent", 40), ("partner12.test", "TLSv1.2", "sent", 20),
        ("legacy10.test", "TLSv1", "sent", 8), ("legacy11.test", "TLSv1.1", "sent", 5),
        ("plain.test", None, "sent", 12), ("reject.test", "TLSv1.3", "bounced", 5),
        ("defer.test", None, "deferred", 5), ("flaky.test", "TLSv1.2", "sent", 6)]

def pick(table):
    return rnd.choices(table, weights=[row[-1] for row in table])[0]

sessions, i = [], 0
while i < N:
    r = rnd.random()
    if r < 0.5:
        net = "127.0.2" if rnd.random() < 0.3 else "127.0.1"
        kind, ip, port = "inbound", "%s.%d" % (net, rnd.randint(2, 250)), 25
    else:
        sub = rnd.random() < 0.4
        kind, ip, port = "outbound", "127.0.0.%d" % (20 if sub else 10), 587 if sub else 25
    tls = pick(TLS_IN)[0]
    if port == 587:
        tls = rnd.choice([ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
    msgs = []
    for _ in range(rnd.choice([1, 1, 1, 2, 3])):
        mid = "gt-%d-%05d@corpus.test" % (SEED, i)
        i += 1
        if kind == "inbound" and rnd.random() < 0.1:  # relay attempt from outside: refused at RCPT
            msgs.append(dict(msgid=mid, kind="rejected", rcpts=["victim@partner13.test"], deliveries=[]))
        elif kind == "inbound":
            rcpts = rnd.sample(["alice@corp.test", "bob@corp.test"], rnd.choice([1, 1, 1, 2]))
            msgs.append(dict(msgid=mid, kind="inbound", rcpts=rcpts,
                             deliveries=[dict(rcpt=x, dest="local", tls=None, status="sent") for x in rcpts]))
        else:
            dests = [pick(DEST)]
            if rnd.random() < 0.1:
                d2 = pick(DEST)
                if d2[0] != dests[0][0]:
                    dests.append(d2)
            rcpts, deliveries = [], []
            for d in dests:
                xs = ["user%d@%s" % (k, d[0]) for k in rnd.sample(range(1, 99), rnd.choice([1, 1, 2]))]
                rcpts.extend(xs)
                deliveries.append(dict(rcpt=",".join(xs), dest=d[0], tls=d[1], status=d[2]))
            msgs.append(dict(msgid=mid, kind="outbound", rcpts=rcpts, deliveries=deliveries))
        msgs[-1]["size_body"] = rnd.randint(10, 4000)
        msgs[-1]["sender"] = "sender%d@%s" % (i, "corp.test" if kind == "outbound" else "ext%d.example" % rnd.randint(1, 40))
    sessions.append((ip, port, tls, msgs))

def run(session):
    ip, port, tls, msgs = session
    out = []
    try:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", source_address=(ip, 0), timeout=30)
        s.ehlo()
        version = None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ctx.maximum_version = tls
            s.starttls(context=ctx)
            version = s.sock.version()
            s.ehlo()
        for m in msgs:
            body = "Message-Id: <%s>\r\nSubject: corpus\r\nFrom: <%s>\r\n\r\n%s\r\n" % (m["msgid"], m["sender"], "\r\n".join("x" * 76 for _ in range(m["size_body"] // 76)) + "\r\nend")
            truth = dict(m, client=ip, port=port, tls_in=version)
            try:
                s.sendmail(m["sender"], m["rcpts"], body)
                truth["queued"] = True
            except smtplib.SMTPException as e:
                truth["queued"] = False
                truth["error"] = str(e)[:120]
                s.rset()
            out.append(truth)
        s.quit()
    except Exception as e:
        for m in msgs[len(out):]:
            out.append(dict(m, client=ip, port=port, tls_in=None, queued=False, error="session: %s" % e))
    return out

with ThreadPoolExecutor(6) as ex:
    results = [t for r in ex.map(run, sessions) for t in r]
with open(OUT, "w") as f:
    for t in results:
        f.write(json.dumps(t) + "\n")
print("sessions", len(sessions), "messages", len(results), "queued", sum(t["queued"] for t in results))

#!/bin/bash
# One OpenSMTPD lab run on loopback, as the site corp.test: installs opensmtpd (Debian 12: 6.8),
# starts the lab's peers and an rsyslogd writing traditional stamps, sends N messages with
# send.py, forces two queue runs so deferred mail is retried, stops everything it started, and
# leaves mail.log, truth.jsonl and smtpd.conf in OUT.
#
#   flock /tmp/mta-lab.lock bash run.sh N SEED OUT      (OUT holds smtpd.conf)
#
# One MTA at a time on a machine: run it under the lock, which it holds from install to stop.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=$1 SEED=$2 OUT=$(cd "$3" && pwd)
SHARED=${MTA_LAB_SHARED:-$(cd "$HERE/../../../../../.." && pwd)/shared/mta-lab}
RUN=${MTA_LAB_DIR:-${TMPDIR:-/tmp}/mta-lab}
LOG=/var/log/opensmtpd-lab.log
mkdir -p "$RUN"
export DEBIAN_FRONTEND=noninteractive
say() { echo "== $(date -u +%T) $*"; }
port_busy() { ss -ltn | grep -q '127.0.0.1:25 '; }

say install
for p in opensmtpd swaks rsyslog python3-venv libnet-ssleay-perl libio-socket-ssl-perl; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then apt-get update -qq; apt-get install -y -q $missing >"$RUN/osmtpd-apt.log" 2>&1; fi
if port_busy; then echo "127.0.0.1:25 is taken by another MTA; stop it first" >&2; exit 1; fi
if pgrep -x rsyslogd >/dev/null; then echo "an rsyslogd is running; stop it first" >&2; exit 1; fi

started_peers= smtpd_pid=
stop() {
  say stop
  # OpenSMTPD 6.8 stops on SIGTERM to its parent process (smtpctl has no stop).
  [ -n "$smtpd_pid" ] && kill "$smtpd_pid" 2>/dev/null
  for i in $(seq 40); do port_busy || break; sleep 0.5; done
  port_busy && echo "smtpd is still running" >&2
  sleep 1
  [ -f "$RUN/osmtpd-rsyslog.pid" ] && kill "$(cat "$RUN/osmtpd-rsyslog.pid")" 2>/dev/null || true
  rm -f "$RUN/osmtpd-rsyslog.pid"
  for pid in $started_peers; do kill "$pid" 2>/dev/null || true; done
}
trap stop EXIT

say pki and peers
if ! [ -f "$RUN/ca.pem" ]; then
  ( cd "$RUN"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=Corp Test CA" 2>/dev/null
    for n in mx peer; do
      openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj "/CN=$n.corp.test" 2>/dev/null
      openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem -days 3650 2>/dev/null
    done
    openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.pem -days 3650 -subj "/CN=legacy.selfsigned" 2>/dev/null )
fi
[ -x "$RUN/venv/bin/python" ] || { python3 -m venv "$RUN/venv"; "$RUN/venv/bin/pip" install -q aiosmtpd; }
for p in partner13:13 partner12:12 legacy10:10 plain:2 legacy11:11 reject:3 defer:4 flaky:5; do
  grep -q "mx.${p%%:*}.test" /etc/hosts || echo "127.0.3.${p##*:} mx.${p%%:*}.test" >> /etc/hosts
done
if ! ss -ltn | grep -q '127.0.3.13:25 '; then
  setsid "$RUN/venv/bin/python" -W ignore "$SHARED/receivers.py" "$RUN" > "$RUN/osmtpd-peers.log" 2>&1 &
  started_peers="$! "
  setsid "$RUN/venv/bin/python" -W ignore "$SHARED/extra_peers.py" "$RUN" > "$RUN/osmtpd-extra.log" 2>&1 &
  started_peers="$started_peers$!"
  sleep 2
fi
id alice >/dev/null 2>&1 || useradd -m alice
id bob >/dev/null 2>&1 || useradd -m bob
[ -f /etc/aliases ] || printf 'postmaster: root\n' > /etc/aliases

say configure
cp "$OUT/smtpd.conf" /etc/smtpd.conf
smtpd -n -f /etc/smtpd.conf
# No mail left over from an earlier run.
for d in queue incoming temporary corrupt purge offline; do rm -rf /var/spool/smtpd/$d/*; done

say rsyslog and smtpd
cat > "$RUN/osmtpd-rsyslog.conf" <<CONF
module(load="imuxsock")
\$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat
mail.* $LOG
CONF
: > "$LOG"
rsyslogd -f "$RUN/osmtpd-rsyslog.conf" -i "$RUN/osmtpd-rsyslog.pid"
sleep 1
smtpd -f /etc/smtpd.conf
for i in $(seq 20); do port_busy && break; sleep 0.5; done
smtpd_pid=$(pgrep -o -f '^smtpd -f /etc/smtpd.conf$')

say send
python3 "$HERE/send.py" "$N" "$SEED" "$OUT/truth.jsonl"
say wait for deliveries and two forced queue runs
sleep 30; smtpctl schedule all || true
sleep 30; smtpctl schedule all || true
sleep 30
smtpctl show queue 2>/dev/null | wc -l | sed 's/^/envelopes still queued: /'
trap - EXIT
stop
cp "$LOG" "$OUT/mail.log"
say done: "$OUT/mail.log" "$(wc -l < "$OUT/mail.log")" lines

# Announces the protocol (after a byte-order mark, as PowerShell writes one), then prints events
# as a real exporter might: blank lines, a CRLF line, and one event that brings its own evidence.
printf '\357\273\277{"mailflow_protocol":1}\n'
echo '{"time":"2026-12-01T08:00:00Z","direction":"inbound","tls":{"version":"tls1_3","trust":"verified"},"peer":{"host":"mx1.contoso.com","ip":"192.0.2.7","port":25},"size":48213}'
echo
printf '%s\r\n' '{"time":"2026-12-01T09:30:00+01:00","direction":"outbound","transport":"smtp","recipients":2,"recipient_domains":["fabrikam.example"],"status":"deferred"}'
echo '   '
echo '{"time":"2026-12-02T10:00:00Z","direction":"outbound","connector":"Partner","evidence":[{"file":"/var/log/gw/2026-12-02.csv","line":17}]}'

# Fails half way: the events before count, and the error quotes standard error.
echo '{"time":"2026-12-01T08:00:00Z","direction":"inbound"}'
echo '{"time":"2026-12-01T09:00:00Z","direction":"outbound"}'
echo 'INFO page 1 of 3 read' >&2
echo 'ERROR page 2: HTTP 503 Service Unavailable' >&2
exit 2

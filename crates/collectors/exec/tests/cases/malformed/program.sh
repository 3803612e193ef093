# Every kind of line that is not an event, between two that are.
echo 'starting export (this should have gone to stderr)'
echo '{"time":"2026-12-01T08:00:00Z","direction":"inbound"}'
echo '{"direction":"inbound"}'
echo '{"time":"2026-12-01T08:00:00","direction":"inbound"}'
echo '{"time":"2026-12-01T08:00:00Z","direction":"sideways"}'
echo '{"time":"2026-12-01T08:00:00Z","direction":"inbound","conector":"x"}'
echo '{"time":"2026-12-01T08:00:00Z","direction":"inbound","size":-5}'
printf '\377\376 not utf-8\n'
echo '{"mailflow_protocol":1}'
head -c 300 /dev/zero | tr '\0' x; echo
echo '{"time":"2026-12-01T09:00:00Z","direction":"outbound"}'
printf '{"time":"2026-12-01T10:00:00Z",'

# Speaks a protocol this mailflow does not: refused, and nothing it prints counts.
echo '{"mailflow_protocol":2,"name":"future-exporter"}'
echo '{"time":"2026-12-01T08:00:00Z","direction":"inbound"}'

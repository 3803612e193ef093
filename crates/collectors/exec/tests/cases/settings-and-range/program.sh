# Echoes its standard input and arguments back inside an event, so the case shows exactly what
# the program is given.
doc=$(cat | sed 's/\\/\\\\/g; s/"/\\"/g')
printf '{"time":"2026-12-01T08:00:00Z","direction":"inbound","sender":"%s","service":"%s","transport":"%s"}\n' \
  "$doc" "$*" "$MAILFLOW_SOURCE $MAILFLOW_START $MAILFLOW_END $MAILFLOW_TIMEZONE $MAILFLOW_PROTOCOL $GATEWAY_REGION"

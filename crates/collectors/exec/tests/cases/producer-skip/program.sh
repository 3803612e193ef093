# A program reports the records of its own input it could not read; mailflow counts each as a
# skipped line at the place the program names. A skip record that is not one is a bad line.
echo '{"mailflow_protocol":1}'
echo '{"time":"2026-12-01T08:00:00Z","direction":"inbound","evidence":[{"file":"export.csv","line":16}]}'
echo '{"mailflow_skip":{"at":"export.csv:17","why":"expected a date in column 1"}}'
echo '{"time":"2026-12-01T09:00:00Z","direction":"outbound","evidence":[{"file":"export.csv","line":18}]}'
echo '{"mailflow_skip":{"at":"","why":"no place given: this line is named instead"}}'
echo '{"mailflow_skip":{"at":"export.csv:20"}}'
echo '{"mailflow_skip":{"at":"export.csv:21","why":"x","extra":1}}'

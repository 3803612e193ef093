#!/bin/bash
# Times `mailflow ingest` of a generated Postfix log into a fresh SQLite store against
# `mailflow run` without a store on the same log, and prints the ratio (the target: within 10 %),
# then an ingest of 10 % more lines appended and one with nothing new.
#
#   bench/store.sh [LINES]        default: 1000000 (and 10 % more to append)
#
# Needs GNU time (/usr/bin/time). Each figure is the fastest of five runs on a warm page cache.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "missing /usr/bin/time (apt-get install time)" >&2; exit 2; }
cargo build --release -q -p mailflow -p xtask
# Where cargo put them: CARGO_TARGET_DIR is honoured.
bin="${CARGO_TARGET_DIR:-target}/release"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
lines=${1:-1000000}
# The timed log has LINES lines; 10 % more are appended for the incremental ingest.
lines=$((lines * 11 / 10))
cat > "$WORK/mailflow.toml" <<TOML
[site]
timezone = "Europe/Berlin"
internal_networks = ["10.0.0.0/8"]
[[collector]]
type = "postfix"
paths = ["\${BENCH_LOG}"]
year = 2026
[[connector]]
name = "Partner Contoso"
direction = "outbound"
relay = ["mx*.contoso.com"]
[[sink]]
type = "json"
path = "report.json"
TOML
sed 's/^\[\[collector\]\]/[store]\nurl = "sqlite:\/\/store.db"\n[[collector]]/' "$WORK/mailflow.toml" > "$WORK/store.toml"

# timed CMD...: prints "seconds peak_kb" of one run (wall time to the millisecond).
timed() {
  local start kb
  start=$(date +%s%N)
  kb=$(/usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1)
  echo "$(awk -v ns=$(( $(date +%s%N) - start )) 'BEGIN{printf "%.3f", ns/1e9}') $kb"
}

# best_of CMD...: prints "seconds peak_kb" of the fastest of five runs.
best_of() {
  local best="" run
  for _ in 1 2 3 4 5; do
    run=$(timed "$@")
    if [ -z "$best" ] || awk -v a="${run%% *}" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then best=$run; fi
  done
  echo "$best"
}

log="$WORK/mail.log"
"$bin"/xtask gen-postfix --lines "$lines" --days 7 --out "$WORK/all.log" 2>/dev/null
total=$(wc -l < "$WORK/all.log")
head -n $((total * 10 / 11)) "$WORK/all.log" > "$log"
tail -n +$((total * 10 / 11 + 1)) "$WORK/all.log" > "$WORK/more.log"
cat "$log" > /dev/null
export BENCH_LOG="$log"
# The store's tables are made once per installation, not per ingest: each timed ingest starts from
# a store that holds them and nothing else.
: > "$WORK/empty.log"
BENCH_LOG="$WORK/empty.log" "$bin"/mailflow ingest -q -c "$WORK/store.toml"
"$bin"/mailflow store -c "$WORK/store.toml" forget postfix >/dev/null
cp "$WORK/store.db" "$WORK/empty.db"
read -r run_s run_kb < <(best_of "$bin"/mailflow run -q -c "$WORK/mailflow.toml" --from 2026-11-23 --to 2026-11-29)
read -r ingest_s ingest_kb < <(best_of sh -c "rm -f '$WORK'/store.db*; cp '$WORK/empty.db' '$WORK/store.db'; exec '$bin/mailflow' ingest -q -c '$WORK/store.toml'")
cp "$log" "$WORK/base.log"
append_best=""
for _ in 1 2 3; do
  cp "$WORK/base.log" "$log"
  rm -f "$WORK"/store.db*
  cp "$WORK/empty.db" "$WORK/store.db"
  "$bin"/mailflow ingest -q -c "$WORK/store.toml"
  cat "$WORK/more.log" >> "$log"
  run=$(timed "$bin"/mailflow ingest -q -c "$WORK/store.toml")
  if [ -z "$append_best" ] || awk -v a="${run%% *}" -v b="${append_best%% *}" 'BEGIN{exit !(a<b)}'; then append_best=$run; fi
done
read -r nothing_s _ < <(best_of "$bin"/mailflow ingest -q -c "$WORK/store.toml")
read -r report_s _ < <(best_of "$bin"/mailflow report -q -c "$WORK/store.toml" --from 2026-11-23 --to 2026-11-29)
mb=$(awk -v b="$(stat -c %s "$WORK/base.log")" 'BEGIN{printf "%.1f", b/1e6}')
awk -v n="$((total * 10 / 11))" -v mb="$mb" -v rs="$run_s" -v rk="$run_kb" -v is="$ingest_s" -v ik="$ingest_kb" \
    -v as="${append_best%% *}" -v ns="$nothing_s" -v ps="$report_s" 'BEGIN{
  printf "log: %d lines, %.1f MB\n", n, mb
  printf "run, no store:          %6.3f s  %6.1f MB RSS\n", rs, rk/1024
  printf "ingest into SQLite:     %6.3f s  %6.1f MB RSS  (%.3fx the run; target <= 1.10x)\n", is, ik/1024, is/rs
  printf "ingest of 10%% appended: %6.3f s\n", as
  printf "ingest, nothing new:    %6.3f s\n", ns
  printf "report from the store:  %6.3f s\n", ps
  exit (is/rs > 1.10) }'

#!/bin/bash
# Times `mailflow run` on generated Postfix logs against pflogsumm in the same run, and prints
# throughput, the speed ratio and peak memory (RSS) of both.
#
#   bench/postfix.sh [LINES...]        default: 1000000 3000000
#
# Needs GNU time (/usr/bin/time) and pflogsumm (Debian: apt-get install time pflogsumm).
# Runs each tool three times on a warm page cache and keeps the fastest run.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in /usr/bin/time pflogsumm; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install time pflogsumm)" >&2; exit 2; }
done
cargo build --release -q -p mailflow -p xtask
# Where cargo put them: CARGO_TARGET_DIR is honoured.
bin="${CARGO_TARGET_DIR:-target}/release"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
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

# best_of CMD...: prints "seconds peak_kb" of the fastest of three runs.
best_of() {
  local best="" run
  for _ in 1 2 3; do
    run=$(/usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1)
    if [ -z "$best" ] || awk -v a="${run%% *}" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then best=$run; fi
  done
  echo "$best"
}

printf "%-9s %8s | %-22s | %-22s | %s\n" lines MB "mailflow s  MB/s  RSS" "pflogsumm s MB/s RSS" "speed ratio"
for lines in "${@:-1000000 3000000}"; do
  for n in $lines; do
    log="$WORK/mail-$n.log"
    "$bin"/xtask gen-postfix --lines "$n" --days 7 --out "$log" 2>/dev/null
    mb=$(awk -v b="$(stat -c %s "$log")" 'BEGIN{printf "%.1f", b/1e6}')
    cat "$log" > /dev/null
    read -r ms mk < <(BENCH_LOG="$log" best_of "$bin"/mailflow run -q -c "$WORK/mailflow.toml" --from 2026-11-23 --to 2026-11-29)
    read -r ps pk < <(best_of pflogsumm "$log")
    awk -v n="$n" -v mb="$mb" -v ms="$ms" -v mk="$mk" -v ps="$ps" -v pk="$pk" 'BEGIN{
      printf "%-9d %8.1f | %6.2f %6.0f %6.1f MB | %6.2f %5.1f %6.1f MB | %.1fx\n",
        n, mb, ms, mb/ms, mk/1024, ps, mb/ps, pk/1024, ps/ms }'
  done
done
echo "mailflow: parse, correlate, roll up and report; pflogsumm: its default summary. $(nproc) cores."

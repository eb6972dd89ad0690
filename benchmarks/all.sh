#!/usr/bin/env bash
# Every workload of issue-sized benchmarks in one run, one after another on the same machine:
# immediate withdrawals (PostgreSQL, with the dialects; then SQLite), payouts and wallet
# creation (each on both backends). Each script runs its own yardstick or `/v1` reference in
# the same run and prints its ratios; this prints their summaries together.
# Usage: benchmarks/all.sh [seconds per measurement, default 15]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-$here/../.venv/bin/python}
seconds=${1:-15}
out=$(mktemp -d)
echo "all: $(date -u +%FT%TZ), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); logs in $out"
run() {
  local name=$1; shift
  echo "all: $name: $*"
  "$py" "$@" > "$out/$name.log" 2>&1 || { echo "all: $name FAILED"; tail -20 "$out/$name.log"; return 1; }
  # the summary: everything after the last progress line ("bench: ...")
  awk '/^bench: /{buf=""; next} {buf = buf $0 "\n"} END {printf "%s", buf}' "$out/$name.log"
}
run withdrawals-pg "$here/withdrawals.py" --rounds 3 --seconds "$seconds" --clients 16,64 --wallets 2000
run withdrawals-sqlite "$here/withdrawals.py" --backend sqlite --seconds "$seconds" --clients 16,64 --wallets 2000
run payouts-pg "$here/payouts.py" --seconds "$seconds" --clients 16,64 --wallets 1000
run payouts-sqlite "$here/payouts.py" --backend sqlite --seconds "$seconds" --clients 16,64 --wallets 500
run wallets-pg "$here/wallets.py" --seconds "$seconds" --clients 16,64 --wallets 1000 --bulk 100000
run wallets-sqlite "$here/wallets.py" --backend sqlite --seconds "$seconds" --clients 16,64 --wallets 1000 --bulk 100000
echo "all: done $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"

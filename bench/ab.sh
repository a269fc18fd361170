#!/usr/bin/env bash
# Interleaved A/B runs of portcullis-bench: for each round, each named gateway binary is
# measured once, in turn, so that the virtual machine's drifting speed hits every binary
# alike. Prints, per run, each concurrency level's throughput ratio and added p50, the
# gateway's CPU per request divided by the mock's in the same run (the figure that depends
# least on the machine's speed), the added time to the first stream event and the peak RSS.
#
# usage: bench/ab.sh [-r ROUNDS] NAME=BINARY[:VAR=VALUE,...] ... [-- BENCH_OPTIONS...]
#   NAME=BINARY           a gateway binary to measure under the label NAME
#   :VAR=VALUE,...        environment variables for that gateway and the benchmark
#   -r ROUNDS             rounds (default 3)
#   -- BENCH_OPTIONS      passed to portcullis-bench (default: --duration 3s --warmup 1s
#                         --rounds 2 --stream-requests 100)
# Reports are written to $AB_OUT (default /tmp/portcullis-ab) as NAME-ROUND.md.
set -euo pipefail

rounds=3
specs=()
while (($#)); do
  case "$1" in
    -r) rounds="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *=*) specs+=("$1"); shift ;;
    *) echo "ab.sh: unexpected argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
bench_options=("$@")
if ((${#bench_options[@]} == 0)); then
  bench_options=(--duration 3s --warmup 1s --rounds 2 --stream-requests 100)
fi
if ((${#specs[@]} == 0)); then
  echo "ab.sh: name at least one NAME=BINARY (see --help)" >&2
  exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bench="${BENCH:-$target/release/portcullis-bench}"
mock="${MOCK:-$target/release/portcullis-mock}"
out="${AB_OUT:-/tmp/portcullis-ab}"
mkdir -p "$out"
for binary in "$bench" "$mock"; do
  [[ -x "$binary" ]] || { echo "ab.sh: $binary is missing: build it in release mode" >&2; exit 2; }
done
for spec in "${specs[@]}"; do
  binary="${spec#*=}"; binary="${binary%%:*}"
  [[ -x "$binary" ]] || { echo "ab.sh: $binary is not an executable" >&2; exit 2; }
done

# One line per concurrency level from the report's two tables, one line for the stream
# and memory figures.
summarize() {
  awk -F'|' '
    /^\| chat \|/ { levels[++n] = $3 + 0; ratio[$3+0] = $6; added[$3+0] = $9 }
    /^## CPU time per request/ { cpu = 1 }
    cpu && /^\| *[0-9]+ \|/ {
      gateway = $5 + 0; mock = $6 + 0   # both in µs (bench/src/cpu.rs)
      if (mock > 0) share[$2+0] = sprintf("%.2f", gateway / mock)
    }
    /^## Stream/ { cpu = 0 }
    /added by the gateway \(median\)/ { sub(/.*: /, ""); stream = $0 }
    /peak RSS over the whole run/ { sub(/.*run: /, ""); sub(/ \(.*/, ""); rss = $0 }
    /ERRORS/ { errors = errors "\n  " $0 }
    END {
      for (i = 1; i <= n; i++) {
        c = levels[i]
        printf "  c=%-4s throughput %-7s added p50 %-10s gateway/mock CPU %s\n", c, ratio[c], added[c], share[c]
      }
      printf "  stream first event %s, peak RSS %s%s\n", stream, rss, errors
    }' "$1"
}

for round in $(seq 1 "$rounds"); do
  for spec in "${specs[@]}"; do
    name="${spec%%=*}"; rest="${spec#*=}"; binary="${rest%%:*}"; vars=()
    if [[ "$rest" == *:* ]]; then IFS=',' read -r -a vars <<< "${rest#*:}"; fi
    report="$out/$name-$round.md"
    status=0
    env "${vars[@]}" "$bench" --gateway "$binary" --mock "$mock" --out "$report" \
      "${bench_options[@]}" > "$out/$name-$round.log" 2>&1 || status=$?
    echo "== $name, round $round (exit $status, $report)"
    if [[ -s "$report" ]]; then summarize "$report"; else tail -3 "$out/$name-$round.log"; fi
  done
done

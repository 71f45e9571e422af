#!/usr/bin/env bash
# Inbound SMTP throughput, Pochta beside Postfix, in one run (run by hand; needs Debian's postfix for
# smtp-source and the reference instance, and ../shared/peers from the project root).
#
#   [ROUNDS=3] [PROCESSES=nproc] bench/smtp_in.sh [COUNT=5000] [SESSIONS=20] [SIZE=10240]
#
# Postfix's smtp-source sends COUNT messages of SIZE octets over SESSIONS parallel sessions, first with
# one connection per message, then several messages per connection (REUSE=1). Each mode runs ROUNDS
# times, Pochta and Postfix taking turns, and the table gives the median of each column: on a shared
# machine one round's pair can fall in a busy and a quiet second, and the ratio with it. Pochta stores every
# message durably (fsync) before its 250, so smtp-source's end is the moment the last one is stored;
# Postfix is timed until its Maildir holds them all. Prints msg/s for both and the ratio, and the CPU time
# (user + system, all threads and processes of the server) each spent per message: on this 2-core machine,
# shared with other work, that figure moves less than msg/s does.
set -euo pipefail
COUNT=${1:-5000} SESSIONS=${2:-20} SIZE=${3:-10240}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
PORT=${POCHTA_PORT:-12625}
WORK=$(mktemp -d /tmp/pochta-bench-smtp.XXXXXX)
POCHTA="$ROOT/.venv/bin/pochta --config $WORK/pochta.toml"
[ -x "$ROOT/.venv/bin/pochta" ] || { echo "run ./run-tests once to make .venv" >&2; exit 1; }
command -v smtp-source >/dev/null || [ -x /usr/sbin/smtp-source ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null

# shellcheck source=bench/smtp_setup.sh
. "$ROOT/bench/smtp_setup.sh"
# The Postfix peer runs no sender-authentication, virus or spam checks, so by default neither does Pochta;
# CHECKS=1 keeps Pochta's default checks.
write_smtp_config "$WORK/pochta.toml" "$WORK/data" "$PORT" "${CHECKS:-0}"

pochta_pid=""
cleanup() {
    [ -n "$pochta_pid" ] && kill "$pochta_pid" 2>/dev/null && wait "$pochta_pid" 2>/dev/null
    bash "$PEERS/postfix-down.sh" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

start_pochta() {
    [ -n "$pochta_pid" ] && kill "$pochta_pid" && wait "$pochta_pid" 2>/dev/null || true
    rm -rf "$WORK/data"
    seed_bench_store "$POCHTA"
    serve_until_ready "$POCHTA" "$WORK/pochta.log"
    pochta_pid=$served_pid
}

rate() { grep -o 'rate=[0-9.]* msg/s' | tail -1 | grep -o '[0-9.]*' | head -1; }

# CPU seconds of a process tree: the process itself (every thread), its children already reaped, and the
# live ones (Postfix's smtpd, cleanup, qmgr and virtual are children of its master).
tree_cpu() {
    python3 - "$1" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def stat(pid):
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()
root = sys.argv[1]
fields = stat(root)
total = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        child = stat(pid)
    except OSError:
        continue
    if child[1] == root:
        total += int(child[11]) + int(child[12])
print(total / tick)
PY
}
per_message_ms() { python3 -c "print(f'{($2 - $1) * 1000 / $COUNT:.2f}')"; }

declare -A results ratios
median() { python3 -c 'import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }
for reuse in 0 1; do
  declare -a pochtas=() postfixes=() pochta_cpus=() postfix_cpus=()
  for round in $(seq "${ROUNDS:-3}"); do
    echo "== mode reuse=$reuse round $round" >&2
    start_pochta
    before=$(tree_cpu "$pochta_pid")
    pochta=$(REUSE=$reuse bash "$PEERS/smtp-bench.sh" 127.0.0.1 "$PORT" "$COUNT" "$SESSIONS" "$SIZE" | tee /dev/stderr | rate)
    pochta_cpu=$(per_message_ms "$before" "$(tree_cpu "$pochta_pid")")
    stored=$($POCHTA mailbox list bench@example.test --json | python3 -c 'import json,sys; print(sum(m["messages"] for m in json.load(sys.stdin)))')
    [ "$stored" = "$COUNT" ] || { echo "pochta stored $stored of $COUNT" >&2; exit 1; }
    bash "$PEERS/postfix-up.sh" >/dev/null
    master=$(tr -d ' ' </tmp/peers-postfix/spool/pid/master.pid)
    before=$(tree_cpu "$master")
    postfix=$(REUSE=$reuse WAIT_DIR=/tmp/peers-postfix/mail/bench bash "$PEERS/smtp-bench.sh" 127.0.0.1 10026 "$COUNT" "$SESSIONS" "$SIZE" | tee /dev/stderr | rate)
    postfix_cpu=$(per_message_ms "$before" "$(tree_cpu "$master")")
    echo "round $round: Pochta $pochta msg/s ($pochta_cpu ms/msg), Postfix $postfix msg/s ($postfix_cpu ms/msg)" >&2
    pochtas+=("$pochta") postfixes+=("$postfix") pochta_cpus+=("$pochta_cpu") postfix_cpus+=("$postfix_cpu")
  done
  results[$reuse]="$(median "${pochtas[@]}") $(median "${postfixes[@]}") $(median "${pochta_cpus[@]}") $(median "${postfix_cpus[@]}")"
  ratios[$reuse]=$(python3 -c 'import sys; n = len(sys.argv) // 2; print(" ".join(f"{float(a) / float(b):.2f}x" for a, b in zip(sys.argv[1:n + 1], sys.argv[n + 1:])))' "${pochtas[@]}" "${postfixes[@]}")
done

echo
echo "smtp-source: $COUNT messages x $SIZE B over $SESSIONS sessions, until stored (Pochta fsyncs before 250)"
echo "Pochta with smtp.processes = ${PROCESSES:-$(nproc)}; medians of ${ROUNDS:-3} rounds each (ratio per round in brackets)"
printf '%-28s %12s %13s %8s %18s\n' "mode" "Pochta msg/s" "Postfix msg/s" "ratio" "CPU ms/msg P / PF"
for reuse in 0 1; do
    read -r p f pc fc <<<"${results[$reuse]}"
    mode=$([ "$reuse" = 1 ] && echo "several per connection" || echo "one connection per message")
    printf '%-28s %12.1f %13.1f %7.2fx %8s / %s   [%s]\n' "$mode" "$p" "$f" "$(python3 -c "print($p / $f)")" "$pc" "$fc" "${ratios[$reuse]}"
done

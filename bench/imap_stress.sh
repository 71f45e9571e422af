#!/usr/bin/env bash
# imaptest's default stress profile (random commands, state checked) against Pochta and, in the same run,
# against Dovecot 2.3 (Debian dovecot-imapd); prints ops/s for both and the ratio. Then opens
# $IDLE_N IDLE connections to Pochta and prints its RSS.
#
#   IMAPTEST=/path/to/imaptest bench/imap_stress.sh
#
# imaptest is not in Debian and is never built or kept here: build dovecot/imaptest elsewhere and point
# IMAPTEST at the binary. Knobs: CLIENTS (10), SECS (30), IDLE_N (10000), POCHTA_PORT (12143),
# PEERS (/work/shared/peers: dovecot-up.sh, dovecot-down.sh, gen-mbox.py, idle-scale.py), MBOX (generated),
# IMAPTEST_ARGS (extra imaptest settings for both servers, e.g. "logout=0"), KEEP=1 (keep logs, printed).
set -euo pipefail

: "${IMAPTEST:?set IMAPTEST to an imaptest binary built outside the repository}"
CLIENTS=${CLIENTS:-10}
SECS=${SECS:-30}
IDLE_N=${IDLE_N:-10000}
PORT=${POCHTA_PORT:-12143}
PEERS=${PEERS:-/work/shared/peers}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
POCHTA_BIN=${POCHTA_BIN:-$ROOT/.venv/bin/pochta}
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/pochta-imap-stress.XXXXXX)
MBOX=${MBOX:-$WORK/sample.mbox}
USER_ADDRESS=stress@example.test
PASSWORD=stress-pass-1
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-/usr/lib/dovecot}  # imaptest links libdovecot.so

# IDLE_N connections: Pochta and the client each hold one descriptor per connection
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_N + 200)) ]; then
  echo "ulimit -n is $(ulimit -n) (hard limit); $IDLE_N IDLE connections need $((IDLE_N + 200))" >&2
  exit 1
fi

pochta_pid=""
cleanup() {
  if [ -n "$pochta_pid" ]; then kill "$pochta_pid" 2>/dev/null || true; wait "$pochta_pid" 2>/dev/null || true; fi
  "$PEERS/dovecot-down.sh" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

[ -f "$MBOX" ] || "$PYTHON" "$PEERS/gen-mbox.py" "$MBOX" 200 42 >/dev/null

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# imaptest's last line is the totals per command (Logi List Stat Sele Fetc Fet2 Stor Dele Expu Appe Logo)
stress() {  # PORT USER PASS LABEL -> prints ops/s
  local out="$WORK/imaptest-$4.txt"
  # shellcheck disable=SC2086  # IMAPTEST_ARGS is a list of key=value words
  "$IMAPTEST" host=127.0.0.1 port="$1" user="$2" pass="$3" mbox="$MBOX" clients="$CLIENTS" secs="$SECS" \
    ${IMAPTEST_ARGS:-} >"$out" 2>&1 || true
  if ! grep -q '^Totals:' "$out"; then
    echo "imaptest against $4 gave no totals:" >&2
    tail -20 "$out" >&2
    return 1
  fi
  local errors
  errors=$(grep -c '^Error:' "$out" || true)
  tail -1 "$out" | awk -v secs="$SECS" -v label="$4" -v errors="$errors" \
    '{ for (i = 1; i <= NF; i++) total += $i
       printf "%-8s %7d commands in %ss = %8.1f ops/s  (imaptest errors: %d)\n", label, total, secs, total / secs, errors > "/dev/stderr"
       printf "%.1f\n", total / secs }'
}

# ---- Pochta ---------------------------------------------------------------------------------------------
cat >"$WORK/pochta.toml" <<EOF
hostname = "mx.example.test"
data_dir = "$WORK/data"
[listen]
smtp = []
submission = []
submissions = []
imap = ["127.0.0.1:$PORT"]
imaps = []
pop3 = []
pop3s = []
managesieve = []
http = []
[limits]
max_connections_per_ip = 20000
max_connections = 20000
[log]
level = "WARNING"
EOF
pochta() { "$POCHTA_BIN" --config "$WORK/pochta.toml" "$@"; }
pochta domain add example.test >/dev/null
echo "$PASSWORD" | pochta user add "$USER_ADDRESS" --password-stdin >/dev/null
"$POCHTA_BIN" --config "$WORK/pochta.toml" serve >"$WORK/pochta.log" 2>&1 &
pochta_pid=$!  # the server itself, not a subshell: its RSS is what is measured
wait_port "$PORT"

echo "imaptest stress: $CLIENTS clients, $SECS s, mbox $(grep -c '^From ' "$MBOX") messages" >&2
pochta_ops=$(stress "$PORT" "$USER_ADDRESS" "$PASSWORD" pochta)

# ---- Dovecot, same machine, same run ------------------------------------------------------------------------
"$PEERS/dovecot-up.sh" >/dev/null </dev/null
dovecot_ops=$(stress "${DOVECOT_IMAP_PORT:-10143}" alice alicepw dovecot)
"$PEERS/dovecot-down.sh" >/dev/null

echo "pochta  ops/s: $pochta_ops"
echo "dovecot ops/s: $dovecot_ops"
awk -v p="$pochta_ops" -v d="$dovecot_ops" 'BEGIN { printf "ratio pochta/dovecot: %.2fx\n", p / d }'

# ---- RSS with IDLE_N idle IDLE connections ------------------------------------------------------------------
"$PYTHON" "$PEERS/idle-scale.py" 127.0.0.1 "$PORT" "$USER_ADDRESS" "$PASSWORD" "$IDLE_N" \
  --server-pid "$pochta_pid" --push-tries 3 --push-gap 0.5 --concurrency 200 --label pochta \
  --json "$WORK/idle.json" >&2 || true
"$PYTHON" - "$WORK/idle.json" <<'EOF'
import json
import sys

result = json.load(open(sys.argv[1]))
before = result.get("server_before", {}).get("rss_kb", 0)
idle = result.get("server_idle", {}).get("rss_kb", 0)
alive = result.get("alive_after_settle", 0)
per_connection = result.get("per_conn_kb", {}).get("rss", "?")
print(f"pochta RSS with {alive} IDLE connections: {idle / 1024:.1f} MiB "
      f"(before connecting: {before / 1024:.1f} MiB; {per_connection} KiB per connection)")
EOF

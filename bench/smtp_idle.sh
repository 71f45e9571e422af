#!/usr/bin/env bash
# Soak (run by hand): while smtp-source delivers COUNT messages to port 25 (served by one process per
# core, as in smtp_in.sh), an IMAP client IDLEs on the same INBOX in the main process. Every message an MX
# process stores must reach that IDLE as an EXISTS (store/sqlite/wakes.py), none lost, and the last soon
# after the last 250. Needs Debian's postfix (smtp-source) and ../shared/peers from the project root.
#
#   bench/smtp_idle.sh [COUNT=5000]      REUSE=1: several messages per connection
set -euo pipefail
COUNT=${1:-5000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
PORT=${POCHTA_PORT:-12627} IMAP_PORT=${POCHTA_IMAP_PORT:-12643}
WORK=$(mktemp -d /tmp/pochta-idle.XXXXXX)
POCHTA="$ROOT/.venv/bin/pochta --config $WORK/pochta.toml"
[ -x "$ROOT/.venv/bin/pochta" ] || { echo "run ./run-tests once to make .venv" >&2; exit 1; }
# shellcheck source=bench/smtp_setup.sh
. "$ROOT/bench/smtp_setup.sh"
write_smtp_config "$WORK/pochta.toml" "$WORK/data" "$PORT"
sed -i "s/^imap = \[\]/imap = [\"127.0.0.1:$IMAP_PORT\"]/" "$WORK/pochta.toml"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
seed_bench_store "$POCHTA"
serve_until_ready "$POCHTA" "$WORK/pochta.log"
pid=$served_pid
python3 - "$IMAP_PORT" "$COUNT" "$WORK/idle.result" <<'PY' &
import imaplib, re, sys, time
port, count, result = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
client = imaplib.IMAP4("127.0.0.1", port, timeout=300)
client.login("bench@example.test", "bench-password")
client.select("INBOX")
client.send(client._new_tag() + b" IDLE\r\n")
assert client.readline().startswith(b"+ ")
open(result + ".ready", "w").close()
seen = updates = 0
while seen < count:
    match = re.match(rb"\* (\d+) EXISTS", client.readline())
    if match:
        seen, updates = int(match.group(1)), updates + 1
with open(result, "w") as out:
    out.write(f"{time.time()} {updates}\n")
PY
idler=$!
for _ in $(seq 100); do [ -e "$WORK/idle.result.ready" ] && break; sleep 0.1; done
bash "$PEERS/smtp-bench.sh" 127.0.0.1 "$PORT" "$COUNT" 20 10240 | tail -1
sent=$(date +%s.%N)
wait "$idler" || { echo "the IDLE client failed" >&2; exit 1; }
read -r seen_at updates <"$WORK/idle.result"
late=$(python3 -c "print(f'{max(0.0, $seen_at - $sent) * 1000:.0f}')")
echo "IDLE saw all $COUNT messages in $updates EXISTS updates, the last $late ms after the last 250"
if grep -q -i "traceback\|error" "$WORK/pochta.log"; then
    echo "server log has errors:" >&2; grep -i "error" "$WORK/pochta.log" | head >&2; exit 1
fi
echo "ok: nothing lost"

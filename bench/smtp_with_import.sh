#!/usr/bin/env bash
# Soak (run by hand): smtp-source delivers while another process (`pochta import`) writes to the same
# store (port 25 served by one process per core, as in smtp_in.sh). The writers take turns through the
# store's lock file; nothing may be lost on either side. Needs Debian's postfix (smtp-source) and
# ../shared/peers from the project root.
#
#   bench/smtp_with_import.sh [COUNT=5000] [IMPORTED=3000]      REUSE=1: several messages per connection
set -euo pipefail
COUNT=${1:-5000} IMPORTED=${2:-3000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
PORT=${POCHTA_PORT:-12626}
WORK=$(mktemp -d /tmp/pochta-soak.XXXXXX)
POCHTA="$ROOT/.venv/bin/pochta --config $WORK/pochta.toml"
[ -x "$ROOT/.venv/bin/pochta" ] || { echo "run ./run-tests once to make .venv" >&2; exit 1; }
# shellcheck source=bench/smtp_setup.sh
. "$ROOT/bench/smtp_setup.sh"
write_smtp_config "$WORK/pochta.toml" "$WORK/data" "$PORT"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
python3 "$PEERS/gen-mbox.py" "$WORK/import.mbox" "$IMPORTED" 7 >/dev/null
seed_bench_store "$POCHTA" archive
serve_until_ready "$POCHTA" "$WORK/pochta.log"
pid=$served_pid
started=$(date +%s.%N)
( $POCHTA import archive@example.test "$WORK/import.mbox" >"$WORK/import.log" 2>&1; status=$?; date +%s.%N >"$WORK/import.end"; exit $status ) &
importer=$!
bash "$PEERS/smtp-bench.sh" 127.0.0.1 "$PORT" "$COUNT" 20 10240 | tail -1
wait "$importer" || { echo "import failed:" >&2; cat "$WORK/import.log" >&2; exit 1; }
echo "import of $IMPORTED messages: $(python3 -c "print(f'{$(cat "$WORK/import.end") - $started:.1f}')") s, alongside"
stored() { $POCHTA mailbox list "$1" --json | python3 -c 'import json,sys; print(sum(m["messages"] for m in json.load(sys.stdin)))'; }
delivered=$(stored bench@example.test) imported=$(stored archive@example.test)
echo "stored: $delivered of $COUNT delivered, $imported of $IMPORTED imported"
if grep -q -i "traceback\|error" "$WORK/pochta.log"; then echo "server log has errors:" >&2; grep -i "error" "$WORK/pochta.log" | head >&2; exit 1; fi
[ "$delivered" = "$COUNT" ] && [ "$imported" = "$IMPORTED" ] || { echo "LOST MESSAGES" >&2; exit 1; }
echo "ok: nothing lost"

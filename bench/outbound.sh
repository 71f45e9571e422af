#!/usr/bin/env bash
# Outbound delivery throughput, Pochta beside Postfix, in one run (run by hand; needs Debian's postfix for
# smtp-sink, smtp-source and the reference instance, and ../shared/peers from the project root).
#
#   bench/outbound.sh [COUNT=5000] [SIZE=10240]
#
# Both start from a full queue of COUNT messages of SIZE octets, one recipient each at sink.test, and
# are timed until the queue is empty; both deliver to the same smtp-sink on 127.0.0.1:10025.
#   Pochta:  bench/outbound_queue.py fills the queue through the store's enqueue while the server is
#            stopped; `pochta serve` then finds mx.sink.test through a tests/dnsserver.py process and
#            delivers with [outbound] per_domain = PER_DOMAIN (default 20, Postfix's
#            default_destination_concurrency_limit, and Pochta's own default).
#   Postfix: a throwaway instance (peers/postfix-up.sh on port 10027, its own run dir) with a
#            transport_maps entry sending sink.test to the sink; smtp-source fills it while a
#            header_checks HOLD keeps everything in the hold queue; `postsuper -H ALL` + `postqueue -f`
#            start the clock.
# Prints msg/s for both and the ratio. Both fsync their queues (Pochta's [storage] fsync default).
set -euo pipefail
COUNT=${1:-5000} SIZE=${2:-10240}
PER_DOMAIN=${PER_DOMAIN:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
PY="$ROOT/.venv/bin/python"
SINK_PORT=${SINK_PORT:-10025}
PF_PORT=${POSTFIX_BENCH_PORT:-10027}
WORK=$(mktemp -d /tmp/pochta-bench-outbound.XXXXXX)
chmod 755 "$WORK"  # Postfix's own users must reach its run dir inside
export POSTFIX_RUN="$WORK/postfix"
[ -x "$ROOT/.venv/bin/pochta" ] || { echo "run ./run-tests once to make .venv" >&2; exit 1; }
command -v smtp-source >/dev/null || [ -x /usr/sbin/smtp-source ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
PATH=$PATH:/usr/sbin

pochta_pid="" dns_pid=""
cleanup() {
    set +e  # run every step, whatever failed
    [ -n "$pochta_pid" ] && kill "$pochta_pid" 2>/dev/null && wait "$pochta_pid" 2>/dev/null
    [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
    bash "$PEERS/postfix-down.sh" >/dev/null 2>&1 || true
    SINK_PORT=$SINK_PORT bash "$PEERS/smtp-sink-down.sh" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }

SINK_PORT=$SINK_PORT bash "$PEERS/smtp-sink-up.sh" >/dev/null

# ---- Pochta ------------------------------------------------------------------------------------------
# TTLs and an SOA as a real zone has: answers, and the negative ones (no AAAA, no _mta-sts TXT), are cached
echo '{"sink.test.": {"MX": ["10 mx.sink.test."], "SOA": ["ns.sink.test. hostmaster.sink.test. 1 3600 600 86400 300"],
  "TTL": ["300"]}, "mx.sink.test.": {"A": ["127.0.0.1"], "TTL": ["300"]}}' > "$WORK/zone.json"
"$PY" "$ROOT/tests/dnsserver.py" "$WORK/zone.json" > "$WORK/dns.out" &
dns_pid=$!
for _ in $(seq 100); do [ -s "$WORK/dns.out" ] && break; sleep 0.05; done
nameserver=$(head -1 "$WORK/dns.out")
cat > "$WORK/pochta.toml" <<EOF
hostname = "mx.example.test"
data_dir = "$WORK/data"
[listen]
smtp = []
submission = []
submissions = []
imap = []
imaps = []
pop3 = []
pop3s = []
managesieve = []
http = []
[outbound]
port = $SINK_PORT
concurrency = $(( PER_DOMAIN > 20 ? PER_DOMAIN : 20 ))
per_domain = $PER_DOMAIN
[dns]
nameservers = ["$nameserver"]
[log]
level = "WARNING"
EOF
"$PY" "$ROOT/bench/outbound_queue.py" fill "$WORK/data" "$COUNT" "$SIZE" sink.test
t0=$(now)
"$ROOT/.venv/bin/pochta" --config "$WORK/pochta.toml" serve 2>"$WORK/pochta.log" &
pochta_pid=$!
"$PY" "$ROOT/bench/outbound_queue.py" wait "$WORK/data" 600 || { tail -20 "$WORK/pochta.log" >&2; exit 1; }
t1=$(now)
kill "$pochta_pid"; wait "$pochta_pid" 2>/dev/null || true; pochta_pid=""
pochta=$(python3 -c "print($COUNT / ($t1 - $t0))")
echo "Pochta:  $COUNT messages delivered in $(python3 -c "print(round($t1 - $t0, 2))") s = $(printf %.1f "$pochta") msg/s (per_domain=$PER_DOMAIN, timed from process start)"

# ---- Postfix -----------------------------------------------------------------------------------------
POSTFIX_PORT=$PF_PORT bash "$PEERS/postfix-up.sh" >"$WORK/postfix-up.log" || { cat "$WORK/postfix-up.log" >&2; exit 1; }
ETC="$POSTFIX_RUN/etc"
echo '/^Subject:/ HOLD' > "$ETC/hold"
echo "sink.test smtp:[127.0.0.1]:$SINK_PORT" > "$ETC/transport"
cat >> "$ETC/main.cf" <<EOF
# outbound bench: sink.test goes to the smtp-sink; everything is held until the clock starts
relay_domains = sink.test
transport_maps = texthash:$ETC/transport
header_checks = regexp:$ETC/hold
EOF
# a restart, not a reload: a reload leaves running smtpd/cleanup processes on the old settings for a while
postfix -c "$ETC" stop >/dev/null 2>&1
for _ in $(seq 50); do [ -f "$POSTFIX_RUN/spool/pid/master.pid" ] && kill -0 "$(tr -d ' ' < "$POSTFIX_RUN/spool/pid/master.pid")" 2>/dev/null || break; sleep 0.1; done
postfix -c "$ETC" start >/dev/null 2>&1
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PF_PORT") 2>/dev/null && break; sleep 0.1; done
smtp-source -s 20 -m "$COUNT" -l "$SIZE" -f bench@example.test -t user@sink.test -N -S "outbound bench" \
    -M bench.example.test "inet:127.0.0.1:$PF_PORT"
spool="$POSTFIX_RUN/spool"
queued() { find "$spool/maildrop" "$spool/incoming" "$spool/active" "$spool/deferred" "$spool/hold" -type f 2>/dev/null | wc -l; }
for _ in $(seq 600); do [ "$(find "$spool/hold" -type f | wc -l)" -ge "$COUNT" ] && break; sleep 0.1; done
held=$(find "$spool/hold" -type f | wc -l)
[ "$held" -ge "$COUNT" ] || { echo "postfix holds $held of $COUNT" >&2; exit 1; }
t0=$(now)
postsuper -c "$ETC" -H ALL >/dev/null 2>&1
postqueue -c "$ETC" -f
for _ in $(seq 6000); do [ "$(queued)" -eq 0 ] && break; sleep 0.05; done
t1=$(now)
left=$(queued)
[ "$left" -eq 0 ] || { echo "postfix still has $left queued" >&2; tail -5 "$POSTFIX_RUN/postfix.log" >&2; exit 1; }
sent=$(grep -c 'status=sent' "$POSTFIX_RUN/postfix.log" || true)
[ "$sent" -ge "$COUNT" ] || { echo "postfix sent $sent of $COUNT" >&2; tail -5 "$POSTFIX_RUN/postfix.log" >&2; exit 1; }
postfix=$(python3 -c "print($COUNT / ($t1 - $t0))")
echo "Postfix: $COUNT messages relayed in $(python3 -c "print(round($t1 - $t0, 2))") s = $(printf %.1f "$postfix") msg/s"

echo
printf '%-10s %12s %12s %8s\n' "" "Pochta msg/s" "Postfix msg/s" "ratio"
printf '%-10s %12.1f %12.1f %7.2fx\n' "outbound" "$pochta" "$postfix" "$(python3 -c "print($pochta / $postfix)")"

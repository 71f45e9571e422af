# Sourced by the SMTP benchmarks (smtp_in.sh, smtp_with_import.sh): a Pochta that listens for SMTP only.

# write_smtp_config FILE DATA_DIR PORT [CHECKS]: the config; CHECKS=1 keeps the sender-authentication and
# spam checks (they ask the machine's resolver about the sender's domain), which the Postfix peer lacks.
# Port 25 is served by one process per core, as Postfix's smtpd processes use every core (PROCESSES=N
# to choose).
write_smtp_config() {
    cat >"$1" <<EOF
hostname = "mx.example.test"
data_dir = "$2"
[listen]
smtp = ["127.0.0.1:$3"]
submission = []
submissions = []
imap = []
imaps = []
pop3 = []
pop3s = []
managesieve = []
http = []
[smtp]
processes = ${PROCESSES:-$(nproc)}
[limits]
max_connections_per_ip = 1000
[log]
level = "WARNING"
EOF
    if [ "${4:-0}" != 1 ]; then
        printf '[auth]\nenabled = false\n[spam]\nenabled = false\n' >>"$1"
    fi
}

# seed_bench_store POCHTA_COMMAND [USER...]: example.test with bench@ (and USER@ for each name given),
# every other address of the domain an alias of bench@ (smtp-source numbers each recipient).
seed_bench_store() {
    local pochta=$1
    shift
    $pochta domain add example.test >/dev/null
    for user in bench "$@"; do
        echo "bench-password" | $pochta user add "$user@example.test" --password-stdin >/dev/null
    done
    $pochta alias add @example.test bench@example.test >/dev/null
}

# serve_until_ready POCHTA_COMMAND LOG: `serve` in the background, back once it says READY=1 the way it
# tells systemd (every listener and MX process accepting); its pid in $served_pid.
serve_until_ready() {
    local notify
    notify=$(mktemp -u /tmp/pochta-notify.XXXXXX)
    python3 - "$notify" <<'PY' &
import socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
    sock.bind(sys.argv[1])
    sock.settimeout(120)
    while b"READY=1" not in sock.recv(4096):
        pass
PY
    local waiter=$!
    for _ in $(seq 100); do [ -S "$notify" ] && break; sleep 0.05; done
    NOTIFY_SOCKET=$notify $1 serve 2>"$2" &
    served_pid=$!
    if ! wait "$waiter"; then
        echo "pochta did not start" >&2; cat "$2" >&2; rm -f "$notify"; exit 1
    fi
    rm -f "$notify"
}

#!/usr/bin/env bash
# The production layout on this machine: REPLICAS backend processes on consecutive ports from
# PORT, and a real Nginx on WEB_PORT with deploy/nginx.conf (rendered for local ports and paths)
# serving a release copy of frontend/dist and proxying /v1/ and /health to the replicas.
#
#   make prod                       # http://127.0.0.1:8080, one backend on :8000
#   make prod REPLICAS=2 WEB_PORT=9090 PORT=9000
#
# Ctrl-C (or SIGTERM) stops everything this script started. `make prod` has already set up
# .venv, the models and frontend/dist. Other backend settings (DEVICE, DTYPE, CHAT_MODEL_PATH,
# API_KEY, ...) are read from the environment or .env as usual, by every replica.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
REPLICAS=${REPLICAS:-1}
PORT=${PORT:-8000}
WEB_PORT=${WEB_PORT:-8080}
HOST=127.0.0.1 # replicas and Nginx listen on loopback only; put TLS and a real server name in front
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
DIST=${FRONTEND_DIST_DIR:-$REPO/frontend/dist}
RATE_LIMIT=${RATE_LIMIT:-off}
READY_TIMEOUT=${READY_TIMEOUT:-600}

say() { printf '[prod] %s\n' "$*"; }
die() { printf '[prod] error: %s\n' "$*" >&2; exit 1; }

[[ $REPLICAS =~ ^[1-9][0-9]*$ ]] || die "REPLICAS must be a positive number (got '$REPLICAS')"
[[ -x $PYTHON ]] || die "$PYTHON not found: run 'make setup' (or 'make prod', which does it)"
[[ -f $DIST/index.html ]] || die "$DIST/index.html not found: run 'make frontend'"

NGINX=$(command -v nginx || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
if [[ -z $NGINX ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing Nginx (Debian package 'nginx')"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
        NGINX=/usr/sbin/nginx
        # The package may start the system Nginx on port 80; this script runs its own.
    else
        die "Nginx is not installed: sudo apt-get install nginx (or your system's package)"
    fi
fi

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
for ((i = 0; i < REPLICAS; i++)); do
    port_busy $((PORT + i)) && die "port $((PORT + i)) is already in use (set PORT=...)"
done
port_busy "$WEB_PORT" && die "port $WEB_PORT is already in use (set WEB_PORT=...)"

# A private run folder outside the repo: Nginx's workers (user nobody when started as root)
# must be able to read it, which a repo under /root would not allow.
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/localchat-prod.XXXXXX")
chmod 755 "$RUN_DIR"

PIDS=()
NGINX_PID=
cleanup() {
    trap - INT TERM EXIT
    say "stopping"
    if [[ -n $NGINX_PID ]]; then kill -QUIT "$NGINX_PID" 2>/dev/null || true; fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}" $NGINX_PID; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    say "stopped; logs are in $RUN_DIR/logs"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$RUN_DIR/logs"
# The release: frontend/dist copied to Nginx's html folder, as a deployment would do.
cp -R "$DIST" "$RUN_DIR/html"
chmod -R a+rX "$RUN_DIR/html"

UPSTREAMS=()
for ((i = 0; i < REPLICAS; i++)); do
    port=$((PORT + i))
    log="$RUN_DIR/logs/backend-$port.log"
    say "starting backend replica $((i + 1))/$REPLICAS on http://$HOST:$port (log: $log)"
    # Each replica's output goes to its log and, prefixed, to this terminal.
    (cd "$REPO" && exec "$PYTHON" -m app --host "$HOST" --port "$port") \
        > >(tee "$log" | sed -u "s/^/[backend:$port] /") 2>&1 &
    PIDS+=($!)
    UPSTREAMS+=(--upstream "$HOST:$port")
done

say "waiting for the replicas to load the model (GET /health)"
deadline=$((SECONDS + READY_TIMEOUT))
for ((i = 0; i < REPLICAS; i++)); do
    port=$((PORT + i))
    until "$PYTHON" - "$HOST" "$port" <<'EOF' 2>/dev/null; do
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/health", timeout=2).read()
EOF
        kill -0 "${PIDS[$i]}" 2>/dev/null || die "backend on port $port exited; see $RUN_DIR/logs/backend-$port.log"
        ((SECONDS < deadline)) || die "backend on port $port not ready after ${READY_TIMEOUT}s"
        sleep 1
    done
    say "backend on port $port is ready"
done

"$PYTHON" deploy/render_nginx.py --nginx "$NGINX" --run-dir "$RUN_DIR" --listen "$HOST:$WEB_PORT" \
    --root "$RUN_DIR/html" --rate-limit "$RATE_LIMIT" --workers 2 "${UPSTREAMS[@]}" --check >/dev/null
"$NGINX" -p "$RUN_DIR" -e "$RUN_DIR/logs/error.log" -c "$RUN_DIR/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 1 50); do port_busy "$WEB_PORT" && break; sleep 0.1; done
port_busy "$WEB_PORT" || die "Nginx did not start; see $RUN_DIR/logs/error.log"

say "site: http://$HOST:$WEB_PORT  (Nginx access log: $RUN_DIR/logs/access.log)"
say "API through Nginx: http://$HOST:$WEB_PORT/v1  ($REPLICAS replica(s) from port $PORT)"
say "press Ctrl-C to stop"

# Stop everything as soon as any one of them stops.
set +e
wait -n "${PIDS[@]}" "$NGINX_PID"
status=$?
say "a process stopped (exit status $status)"
exit "$status"

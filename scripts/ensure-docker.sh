#!/usr/bin/env bash
# Make sure a Docker engine answers: install docker.io and start dockerd in the background if needed.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing docker.io (Docker engine) with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  else
    echo "error: no Docker engine; install one (Debian: sudo apt-get install -y docker.io) and start it" >&2
    exit 1
  fi
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: Docker engine not running; start it: sudo systemctl start docker (or sudo dockerd &)" >&2
  exit 1
fi
log=${DOCKERD_LOG:-/tmp/launcher-dockerd.log}
echo "starting dockerd in the background (log: $log)"
setsid nohup dockerd >"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    # Marks the engine as ours: the daemon-restart test only ever restarts an engine this script started.
    echo "$!" > /run/launcher-started-dockerd
    echo "dockerd is up"; exit 0
  fi
  sleep 1
done
echo "error: dockerd did not answer within 60 s; see $log" >&2
tail -n 5 "$log" >&2
exit 1

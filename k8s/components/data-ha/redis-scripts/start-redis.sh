#!/bin/sh
# Starts this pod's Redis as the master, or as a replica of the master the sentinels name.
# Env: REDIS_PORT, REDIS_PASSWORD, DATA_DIR (the append-only file), ANNOUNCE_HOST (this
# pod's host name), and find-master.sh's.
# It announces its stable host name (never the pod IP, which changes on a restart), so the
# sentinels hand clients and replicas an address that survives rescheduling.
set -eu
master="$("$(dirname "$0")/find-master.sh")"
set -- --port "$REDIS_PORT" --dir "$DATA_DIR" --appendonly yes --maxmemory-policy noeviction \
  --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" \
  --replica-announce-ip "$ANNOUNCE_HOST"
if [ "$master" != "$ANNOUNCE_HOST" ]; then
  set -- "$@" --replicaof "$master" "$REDIS_PORT"
fi
exec redis-server "$@"

#!/bin/sh
# Starts this pod's sentinel watching the current master (quorum 2 of the 3 sentinels).
# The sentinel rewrites its config as it learns, so the file lives on a writable emptyDir;
# after a restart it is written afresh from what the other sentinels say.
# Env: SENTINEL_PORT, REDIS_SENTINEL_PASSWORD, REDIS_PORT, REDIS_PASSWORD, MASTER_NAME, DATA_DIR,
# ANNOUNCE_HOST, and find-master.sh's.
set -eu
master="$("$(dirname "$0")/find-master.sh")"
cat > "$DATA_DIR/sentinel.conf" <<CONF
port $SENTINEL_PORT
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $ANNOUNCE_HOST
requirepass $REDIS_SENTINEL_PASSWORD
sentinel sentinel-pass $REDIS_SENTINEL_PASSWORD
sentinel monitor $MASTER_NAME $master $REDIS_PORT 2
sentinel auth-pass $MASTER_NAME $REDIS_PASSWORD
sentinel down-after-milliseconds $MASTER_NAME 5000
sentinel failover-timeout $MASTER_NAME 60000
sentinel parallel-syncs $MASTER_NAME 1
CONF
exec redis-server "$DATA_DIR/sentinel.conf" --sentinel

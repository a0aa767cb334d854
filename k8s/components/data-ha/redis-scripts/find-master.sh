#!/bin/sh
# Prints the host name of the current Redis master: the one the first answering sentinel
# names, or, when no sentinel answers (the set is starting for the first time), pod 0.
# Env: PEERS (the pods' host names, pod 0 first), SENTINEL_PORT, REDIS_SENTINEL_PASSWORD,
# MASTER_NAME.
for peer in $PEERS; do
  master="$(timeout 3 redis-cli -h "$peer" -p "$SENTINEL_PORT" --no-auth-warning \
    -a "$REDIS_SENTINEL_PASSWORD" sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | head -n 1)"
  if [ -n "$master" ]; then
    echo "$master"
    exit 0
  fi
done
set -- $PEERS
echo "$1"

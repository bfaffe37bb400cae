#!/bin/sh
# Forms a Redis Cluster of REDIS_NODES (space-separated host:port, every one a
# master: no replicas), once; then waits until every node reports
# cluster_state:ok. Run by compose.yaml's redis-init service with the redis
# image's redis-cli. Safe to run again: a formed cluster is left as it is.
set -eu
: "${REDIS_NODES:?REDIS_NODES: space-separated host:port of the cluster nodes}"

for n in $REDIS_NODES; do
  until redis-cli -h "${n%:*}" -p "${n##*:}" ping 2>/dev/null | grep -q PONG; do
    echo "waiting for $n"; sleep 1
  done
done

first=${REDIS_NODES%% *}
if redis-cli -h "${first%:*}" -p "${first##*:}" cluster info | grep -q '^cluster_known_nodes:1\b'; then
  # CLUSTER MEET wants addresses, not host names.
  addrs=""
  for n in $REDIS_NODES; do
    set -- $(getent ahostsv4 "${n%:*}")
    addrs="$addrs $1:${n##*:}"
  done
  # shellcheck disable=SC2086
  redis-cli --cluster create $addrs --cluster-replicas 0 --cluster-yes
fi

# Nodes find each other by the addresses in their nodes.conf (the cluster
# bus uses addresses, not the announced host names). After `docker compose
# down` and `up`, the network is made again and the containers may get other
# addresses; nodes that reach one another learn the new ones, but if none
# reaches any, the cluster never forms again: say so and fail rather than
# wait for ever (linkflow would not start, waiting for this service).
waited=0
for n in $REDIS_NODES; do
  until redis-cli -h "${n%:*}" -p "${n##*:}" cluster info | grep -q '^cluster_state:ok'; do
    if [ "$waited" -ge 120 ]; then
      echo "redis cluster not ok after 120s: $n reports" >&2
      redis-cli -h "${n%:*}" -p "${n##*:}" cluster info | grep '^cluster_state' >&2 || true
      echo "If the containers' addresses changed since the cluster was formed, the nodes cannot find each other." >&2
      echo "Start again from empty volumes (docker compose down -v, losing the data), or keep the network between runs (docker compose stop/start)." >&2
      exit 1
    fi
    echo "waiting for $n to see cluster_state:ok"; sleep 1; waited=$((waited + 1))
  done
done
echo "redis cluster ready: $REDIS_NODES"

#!/bin/bash
# `unshare -n -- bash bench/sticky.sh` (root): wrk against hotreload, steered, with and without
# --sticky, in a fresh network namespace; prints markdown rows (docs/benchmarks.md, "Sticky steering").
ip link set lo up
CLI=${CLI:-$(dirname "$(realpath "$0")")/../cli.ts}
D=$(mktemp -d); echo 'Deno.serve(() => new Response("hi"));' > $D/main.ts; cd $D
run() { # label workers extra wrk-args
  local label=$1 w=$2 extra=$3; shift 3
  P=$((20000 + RANDOM % 20000))
  deno run -A $CLI run main.ts -N --no-watch -w $w --port $P $extra > $D/log 2>&1 &
  local pid=$!
  for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:$P/ && break; sleep 0.1; done
  sleep 0.5
  local rps=$(taskset -c 0 wrk -t1 -c64 -d5s "$@" http://127.0.0.1:$P/ | awk '/Requests\/sec/ {print $2}')
  echo "| $label | $rps |"
  kill -TERM $pid; wait $pid 2>/dev/null
}
for round in 1 2; do
run "1 worker, steered, keep-alive" 1 ""
run "1 worker, steered + sticky, keep-alive" 1 "--sticky"
run "1 worker, steered, new connection per request" 1 "" -H "Connection: close"
run "1 worker, steered + sticky, new connection per request" 1 "--sticky" -H "Connection: close"
run "4 workers, steered, keep-alive" 4 ""
run "4 workers, steered + sticky (one client address), keep-alive" 4 "--sticky"
run "4 workers, steered, new connection per request" 4 "" -H "Connection: close"
run "4 workers, steered + sticky (one client address), new connection per request" 4 "--sticky" -H "Connection: close"
done
rm -rf $D

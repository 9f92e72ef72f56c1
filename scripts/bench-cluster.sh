#!/usr/bin/env bash
# Cluster throughput on loopback (the "Several nodes on PostgreSQL" section
# of docs/performance.md): the same load as scripts/bench-relay.sh (2 KiB
# messages from smtp-source, one per connection, to an IP-authenticated user
# on the relay port, relayed to smtp-sink), through
#
#   sqlite    one dkimd node on its embedded SQLite and disk spool
#   pg1       one dkimd node on PostgreSQL (store and queue)
#   pg2, pg3  two and three nodes on the same PostgreSQL, the load split
#             evenly over them (one smtp-source per node)
#
# PostgreSQL is a private server under the work folder with production
# durability: fsync on, synchronous_commit on (dkimd answers 250 only after
# the commit). A run is timed from the start of smtp-source until the next
# hop has every message (the sum of dkimd_queue_delivered_total over the
# nodes). CPU is read from /proc: each dkimd process's, and PostgreSQL's
# (the postmaster with its exited children, plus its live backends), so that
# CPU per message can be projected to nodes on machines of their own.
# Rounds are interleaved; the medians of RUNS rounds are printed.
#
# Usage: scripts/bench-cluster.sh              (about 5 minutes on 2 cores)
#        RUNS=1 COUNT=500 scripts/bench-cluster.sh
# Needs: root (PostgreSQL runs as the postgres user), go, postgresql (15),
# postfix (smtp-source, smtp-sink), curl, /usr/bin/python3. Everything lives
# in a temporary folder, removed at exit with every process it started
# (KEEP=1 keeps it).
set -euo pipefail

RUNS=${RUNS:-3}
SESSIONS=${SESSIONS:-8}
COUNT=${COUNT:-3000}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

PY=/usr/bin/python3
root=$(cd "$(dirname "$0")/.." && pwd)
for c in go smtp-source smtp-sink curl "$PY"; do
	command -v "$c" >/dev/null || { echo "bench-cluster: $c not found (apt-get install postfix curl)" >&2; exit 2; }
done
[ -x "$PGBIN/initdb" ] || { echo "bench-cluster: PostgreSQL not found (apt-get install postgresql)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "bench-cluster: must run as root (PostgreSQL runs as postgres)" >&2; exit 2; }

BENCH=bench-cluster
. "$root/scripts/bench-lib.sh"
PGDIR=$W/pg
stop_services() {
	[ -f "$PGDIR/data/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1
}
# pg_cpu: PostgreSQL's CPU so far, in ticks: the postmaster with the
# children it reaped, and its live children.
pg_cpu() {
	local pm t c
	pm=$(head -1 "$PGDIR/data/postmaster.pid")
	t=$(ALL=1 cpu_ticks "$pm")
	for c in $(ps -o pid= --ppid "$pm"); do t=$((t + $(cpu_ticks "$c"))); done
	echo "$t"
}

log "work folder $W"
log "building dkimd"
(cd "$root" && go build -o "$W/dkimd" ./cmd/dkimd)

"$PY" - "$W/m2k.eml" 2048 <<'EOF'
import sys
path, size = sys.argv[1], int(sys.argv[2])
head = ("From: Bench Server <srv@example.com>\nTo: Bob <bob@example.net>\n"
        "Subject: relay benchmark\nDate: Sun, 29 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <bench-%d@example.com>\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n\n" % size)
line = "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\n"
body = ""
while len(head) + len(body) + len(line) <= size:
    body += line
body += "x" * (size - len(head) - len(body) - 1) + "\n"
open(path, "w").write(head + body)
EOF

SINK_PORT=$(free_port)
start smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 >/dev/null
wait_port 127.0.0.1 "$SINK_PORT"

# ---- PostgreSQL, durable
PGPORT=$(free_port)
install -d -o postgres -m 0700 "$PGDIR"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
	-o "-k $PGDIR -c listen_addresses='' -p $PGPORT -c max_connections=200 ${PGOPTS:-}" start >/dev/null
PGURL="postgres://postgres@/dkimd?host=$PGDIR&port=$PGPORT&sslmode=disable"
MK=$("$PY" -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')

# ---- installations: one SQLite data directory; one PostgreSQL database
# per cluster size, so that no run's queue or counters meet another's.
setup() { # ENV...
	env "$@" "$W/dkimd" domain add example.com --init >/dev/null
	env "$@" "$W/dkimd" key generate --domain example.com --selector s1 --bits 2048 >/dev/null
	env "$@" "$W/dkimd" key activate --domain example.com --selector s1 --force >/dev/null
	env "$@" "$W/dkimd" user add --domain example.com --name srv --ip 127.0.0.1 >/dev/null
}
mkdir -p "$W/sqlite"
setup DKIMD_DATA="$W/sqlite"
for n in 1 2 3; do
	runuser -u postgres -- "$PGBIN/createdb" -h "$PGDIR" -p "$PGPORT" "dkimd$n"
	setup DKIMD_DATA="$W/admin" DKIMD_DATABASE="${PGURL/\/dkimd\?//dkimd$n?}" DKIMD_MASTER_KEY="$MK"
done

# node_start NAME ENV...: sets NODE_PID, NODE_RELAY, NODE_HTTP.
node_start() {
	local name=$1 logf=$W/$1.log
	shift
	: >"$logf"
	start env "$@" "$W/dkimd" serve --listen-http 127.0.0.1:0 \
		--listen-submission 127.0.0.1:0 --listen-submissions 127.0.0.1:0 --listen-relay 127.0.0.1:0 \
		--hostname "$name.test" --smarthost "127.0.0.1:$SINK_PORT" --smarthost-tls none \
		--messages-per-hour -1 --messages-per-day -1 2>>"$logf" >/dev/null
	NODE_PID=$LAST_PID
	for _ in $(seq 400); do
		grep -q 'msg=serving' "$logf" 2>/dev/null && break
		sleep 0.05
	done
	NODE_RELAY=$(grep -o ' relay=[0-9.:]*' "$logf" | tail -1 | cut -d= -f2)
	NODE_HTTP=$(grep -o ' http=[0-9.:]*' "$logf" | tail -1 | cut -d= -f2)
	[ -n "$NODE_RELAY" ] || { log "$name did not start:"; cat "$logf" >&2; exit 1; }
}
delivered() { # HTTP...: the sum of dkimd_queue_delivered_total
	local s=0 v h
	for h in "$@"; do
		v=$(curl -sf --max-time 10 "http://$h/metrics" | awk '$1 == "dkimd_queue_delivered_total" {print $2; exit}')
		s=$(awk -v a="$s" -v b="${v:-0}" 'BEGIN {print a + b}')
	done
	printf '%.0f\n' "$s"
}

# run SYSTEM: one timed run; appends "rate cpu_per_msg_node_ms pg_cpu_per_msg_ms"
run() {
	local sys=$1 nodes=1 envs=() i
	case $sys in
	sqlite) envs=("DKIMD_DATA=$W/sqlite") ;;
	pg*) nodes=${sys#pg} ;;
	esac
	local pids_=() https=() relays=()
	for i in $(seq "$nodes"); do
		if [ "$sys" != sqlite ]; then
			envs=("DKIMD_DATA=$W/$sys-node$i" "DKIMD_DATABASE=${PGURL/\/dkimd\?//dkimd$nodes?}" "DKIMD_MASTER_KEY=$MK")
		fi
		node_start "$sys-node$i" "${envs[@]}"
		pids_+=("$NODE_PID")
		https+=("$NODE_HTTP")
		relays+=("$NODE_RELAY")
	done
	local base c0=() p0 t0 t1 got c1 p1 per=$((COUNT / nodes)) total
	total=$((per * nodes))
	base=$(delivered "${https[@]}")
	for i in "${!pids_[@]}"; do c0+=("$(cpu_ticks "$(pgrep -P "${pids_[$i]}" -x dkimd || echo "${pids_[$i]}")")"); done
	p0=$(pg_cpu)
	t0=$(now)
	local srcs=()
	for r in "${relays[@]}"; do
		smtp-source -s $(((SESSIONS + nodes - 1) / nodes)) -m "$per" -F "$W/m2k.eml" \
			-f srv@example.com -t bob@example.net "$r" &
		srcs+=($!)
	done
	for s in "${srcs[@]}"; do wait "$s"; done
	local deadline=$(($(date +%s) + RUN_TIMEOUT))
	while :; do
		got=$(($(delivered "${https[@]}") - base))
		[ "$got" -ge "$total" ] && break
		[ "$(date +%s)" -lt "$deadline" ] || { log "$sys: only $got of $total delivered"; exit 1; }
		sleep 0.05
	done
	t1=$(now)
	local ccpu=0
	for i in "${!pids_[@]}"; do
		c1=$(cpu_ticks "$(pgrep -P "${pids_[$i]}" -x dkimd || echo "${pids_[$i]}")")
		ccpu=$((ccpu + c1 - ${c0[$i]}))
	done
	p1=$(pg_cpu)
	for p in "${pids_[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	for p in "${pids_[@]}"; do
		for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	done
	awk -v n="$total" -v t0="$t0" -v t1="$t1" -v c="$ccpu" -v p="$((p1 - p0))" -v hz="$TCK" -v nodes="$nodes" -v sys="$sys" \
		'BEGIN {printf "%s %.1f %.3f %.3f %.3f\n", sys, n / (t1 - t0), c / hz * 1000 / n, c / hz * 1000 / n / nodes, p / hz * 1000 / n}'
}

log "$RUNS rounds of $COUNT messages of 2 KiB, $SESSIONS sessions"
: >"$W/results"
read -ra systems <<<"${SYSTEMS:-sqlite pg1 pg2 pg3}"
for r in $(seq "$RUNS"); do
	# A new order each round (rotated by one), so that what one run leaves
	# behind on the disk falls on every system alike.
	for i in "${!systems[@]}"; do
		sys=${systems[$(((i + r - 1) % ${#systems[@]}))]}
		line=$(run "$sys")
		log "round $r: $line (msgs/s, dkimd CPU ms/msg all nodes, per node, PostgreSQL CPU ms/msg)"
		echo "$line" >>"$W/results"
	done
done

printf '\n%-8s %10s %22s %26s %20s\n' system "msgs/s" "dkimd CPU ms/msg" "dkimd CPU ms/msg/node" "PostgreSQL ms/msg"
for sys in sqlite pg1 pg2 pg3; do
	rate=$(awk -v s="$sys" '$1 == s {print $2}' "$W/results" | median)
	c=$(awk -v s="$sys" '$1 == s {print $3}' "$W/results" | median)
	cn=$(awk -v s="$sys" '$1 == s {print $4}' "$W/results" | median)
	p=$(awk -v s="$sys" '$1 == s {print $5}' "$W/results" | median)
	printf '%-8s %10s %22s %26s %20s\n' "$sys" "$rate" "$c" "$cn" "$p"
done
echo
echo "all runs:"
cat "$W/results"

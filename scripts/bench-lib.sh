# What the benchmark scripts (bench-relay.sh, bench-milter.sh,
# bench-cluster.sh) share: sourced by each, after it set BENCH (its name, for
# messages) and checked its tools. It makes the work folder W, starts and
# tracks the processes a run needs, and removes both at exit (KEEP=1 keeps
# the folder). A script that starts services of its own (Postfix, PostgreSQL)
# defines stop_services, which the cleanup calls first.

PY=${PY:-/usr/bin/python3} # the scripts set it before their checks
W=$(mktemp -d "/tmp/$BENCH.XXXXXX")
chmod 755 "$W" # Postfix (user postfix) and PostgreSQL must reach into it
pids=()

cleanup() {
	set +e
	declare -F stop_services >/dev/null && stop_services
	for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -9 -- "-$p" 2>/dev/null; done
	if [ "${KEEP:-0}" = 1 ]; then echo "$BENCH: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "$BENCH: failed at line $LINENO" >&2' ERR

log() { echo "$BENCH: $*" >&2; }
now() { date +%s.%N; }
free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# start CMD...: runs CMD in its own process group and remembers it for the
# cleanup; its PID is left in LAST_PID.
start() {
	setsid "$@" &
	LAST_PID=$!
	pids+=("$LAST_PID")
	disown "$LAST_PID" # no "Killed" notes from bash at cleanup
}
wait_port() { # HOST PORT
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
		sleep 0.05
	done
	log "nothing listening on $1:$2"
	return 1
}
# median: of the numbers on standard input, one per line; nothing if none.
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) exit; if (NR%2) print a[(NR+1)/2]; else printf "%g\n", (a[NR/2]+a[NR/2+1])/2}'; }
TCK=$(getconf CLK_TCK)
# cpu_ticks PID: user + system clock ticks of the process and its threads
# (with its reaped children's too when ALL=1); 0 if it is gone.
cpu_ticks() {
	awk -v all="${ALL:-0}" '{sub(/^.*\) /, ""); t=$12+$13; if (all) t+=$14+$15; print t}' "/proc/$1/stat" 2>/dev/null || echo 0
}
# sent_count POSTFIX_DIR: the messages that Postfix instance delivered.
sent_count() { grep -c 'status=sent' "$1/maillog" || true; }

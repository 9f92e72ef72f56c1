#!/usr/bin/env bash
# Relay throughput on loopback, side by side in one run (the "Relay
# throughput" section of docs/performance.md):
#
#   dkimd     dkimd serve, RSA-2048 signing, full durability (fsync before
#             250), an IP-authenticated user on the relay port
#   postfix   a private Postfix instance relaying, no signing
#   pf+odkim  the same with the OpenDKIM milter (UNIX socket, RSA-2048,
#             relaxed/relaxed)
#
# all relaying to "smtp-sink -u nobody 127.0.0.1:PORT 256", loaded with
# "smtp-source -s SESSIONS -m COUNT -F FILE" with a 2 KiB and a 200 KiB
# message. A run is timed from the start of smtp-source until the next hop
# has acknowledged every message (dkimd: dkimd_queue_delivered_total on
# /metrics; Postfix: status=sent lines in its log). Rounds are interleaved
# (each round runs every system once per size) so that load from other
# programs falls on all alike; the medians of RUNS rounds and the ratios are
# printed. Compare ratios, not absolute numbers, never across machines.
#
# With BACKLOG=1 it also queues BACKLOG_COUNT (100,000) small messages into
# dkimd while the next hop is down (nothing listening: connection refused),
# sampling dkimd's resident memory (VmRSS) every 10,000 messages, then starts
# the sink and waits until the queue has drained. This takes about half an
# hour on 2 cores: loading runs at the relay's speed and, once the sink is
# back, the messages leave only as their retry time comes (5 minutes, then
# 10, after the first failures).
#
# dkimd runs with its per-user hourly and daily limits off (--messages-per-hour
# -1 --messages-per-day -1), as a relay for trusted servers would be set up.
# The backlog is loaded by ceil(BACKLOG_COUNT/1000) IP-authenticated users,
# each on its own loopback address 127.0.1.N (a small Python loader, since
# smtp-source cannot choose its source address), so that the queue holds
# many senders.
#
# With BASELINE=REV (a git revision, e.g. HEAD) a dkimd built from REV runs
# too, as "dkimd@REV", interleaved with the others in every round: before and
# after a change, measured under the same load.
#
# With PKCS11=1 the dkimd of the working tree signs with an RSA-2048 key
# generated in a SoftHSM token (Debian softhsm2, a token made in the work
# folder); a BASELINE dkimd keeps its key sealed in the database, so
# "PKCS11=1 BASELINE=HEAD" measures the token against the database in the
# same rounds.
#
# Usage: scripts/bench-relay.sh                (about 5 minutes on 2 cores)
#        BASELINE=HEAD scripts/bench-relay.sh  (the working tree against HEAD)
#        RUNS=1 COUNT_SMALL=300 COUNT_LARGE=50 scripts/bench-relay.sh
#        BACKLOG=1 THROUGHPUT=0 scripts/bench-relay.sh
#        ONLY_DKIMD=1 BASELINE=HEAD scripts/bench-relay.sh  (dkimd only: before
#                                 and after, without the Postfix runs)
# Needs: root (Postfix), go, postfix (smtp-source, smtp-sink), opendkim,
# curl, /usr/bin/python3. Never binds port 25; the system's Postfix
# instance is not touched. Everything lives in a temporary folder, removed
# at exit with every process the script started (KEEP=1 keeps the folder).
set -euo pipefail

RUNS=${RUNS:-3}
SESSIONS=${SESSIONS:-8}
COUNT_SMALL=${COUNT_SMALL:-3000}
COUNT_LARGE=${COUNT_LARGE:-500}
THROUGHPUT=${THROUGHPUT:-1}
BACKLOG=${BACKLOG:-0}
BACKLOG_COUNT=${BACKLOG_COUNT:-100000}
BASELINE=${BASELINE:-}
PKCS11=${PKCS11:-0}
ONLY_DKIMD=${ONLY_DKIMD:-0}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-3600}

PY=/usr/bin/python3
root=$(cd "$(dirname "$0")/.." && pwd)
for c in go postfix smtp-source smtp-sink opendkim curl "$PY"; do
	command -v "$c" >/dev/null || { echo "bench-relay: $c not found (apt-get install postfix opendkim curl)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench-relay: must run as root (private Postfix instances)" >&2; exit 2; }

BENCH=bench-relay
. "$root/scripts/bench-lib.sh"
postfixes=()
stop_services() { for d in "${postfixes[@]}"; do postfix -c "$d" stop >/dev/null 2>&1; done; }

log "work folder $W"
log "building dkimd"
(cd "$root" && go build -o "$W/dkimd" ./cmd/dkimd)
if [ -n "$BASELINE" ]; then
	log "building dkimd at $BASELINE"
	mkdir -p "$W/base-src"
	git -C "$root" archive "$BASELINE" | tar -x -C "$W/base-src"
	(cd "$W/base-src" && go build -o "$W/dkimd-base" ./cmd/dkimd)
fi

# ---- messages (LF line ends: smtp-source sends each line with CRLF)
mkmsg() { # FILE BYTES
	"$PY" - "$1" "$2" <<'EOF'
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
}
mkmsg "$W/m2k.eml" 2048
mkmsg "$W/m200k.eml" 204800

# ---- the next hop
SINK_PORT=$(free_port)
start smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 >/dev/null
wait_port 127.0.0.1 "$SINK_PORT"

# ---- the PKCS#11 token (PKCS11=1)
HSM_FLAGS=()
if [ "$PKCS11" = 1 ]; then
	command -v softhsm2-util >/dev/null || { echo "bench-relay: PKCS11=1 needs softhsm2-util (apt-get install softhsm2)" >&2; exit 2; }
	mkdir -p "$W/softhsm/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$W/softhsm/tokens" >"$W/softhsm/softhsm2.conf"
	export SOFTHSM2_CONF=$W/softhsm/softhsm2.conf DKIMD_PKCS11_PIN=bench-pin
	softhsm2-util --init-token --free --label dkimd-bench --pin "$DKIMD_PKCS11_PIN" --so-pin bench-so-pin >/dev/null
	HSM_FLAGS=(--pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token dkimd-bench)
	log "signing key in SoftHSM token dkimd-bench"
fi
# hsm_flags BINARY: the token flags for the working tree's dkimd.
hsm_flags() { [ "$1" = "$W/dkimd" ] && echo "${HSM_FLAGS[@]}" || true; }

# ---- dkimd
setup_dkimd() { # DATA_DIR [BINARY]
	local d=$1 bin=${2:-$W/dkimd} backend=sealed
	[ "$PKCS11" = 1 ] && [ "$bin" = "$W/dkimd" ] && backend=pkcs11
	DKIMD_DATA=$d "$bin" domain add example.com >/dev/null
	# shellcheck disable=SC2046
	DKIMD_DATA=$d "$bin" key generate --domain example.com --selector s1 --bits 2048 \
		$([ "$backend" = pkcs11 ] && echo --backend pkcs11 $(hsm_flags "$bin")) >/dev/null
	DKIMD_DATA=$d "$bin" key activate --domain example.com --selector s1 --force >/dev/null
	DKIMD_DATA=$d "$bin" user add --domain example.com --name srv --ip 127.0.0.1 >/dev/null
}
# dkimd_start DATA_DIR SMARTHOST [BINARY]: sets DKIMD_PID, DKIMD_RELAY,
# DKIMD_HTTP.
dkimd_start() {
	local d=$1 logf=$1/serve.log bin=${3:-$W/dkimd}
	: >"$logf"
	# The default log level (info), as Postfix logs each message too.
	# shellcheck disable=SC2046
	DKIMD_DATA=$d start "$bin" serve $(hsm_flags "$bin") --listen-http 127.0.0.1:0 \
		--listen-submission 127.0.0.1:0 --listen-submissions 127.0.0.1:0 --listen-relay 127.0.0.1:0 \
		--hostname dkimd.test --smarthost "$2" --smarthost-tls none \
		--messages-per-hour -1 --messages-per-day -1 2>>"$logf" >/dev/null
	DKIMD_PID=$LAST_PID
	for _ in $(seq 400); do
		if grep -q 'msg=serving' "$logf" 2>/dev/null; then break; fi
		sleep 0.05
	done
	DKIMD_RELAY=$(grep -o ' relay=[0-9.:]*' "$logf" | tail -1 | cut -d= -f2)
	DKIMD_HTTP=$(grep -o ' http=[0-9.:]*' "$logf" | tail -1 | cut -d= -f2)
	[ -n "$DKIMD_RELAY" ] || { log "dkimd did not start:"; cat "$logf" >&2; exit 1; }
}
dkimd_stop() {
	kill -TERM "$DKIMD_PID" 2>/dev/null || true
	for _ in $(seq 300); do kill -0 "$DKIMD_PID" 2>/dev/null || return 0; sleep 0.05; done
	kill -9 -- "-$DKIMD_PID" 2>/dev/null || true
}
metric() { # NAME: value from dkimd's /metrics
	curl -sf --max-time 10 "http://$DKIMD_HTTP/metrics" | awk -v n="$1" '$1 == n {print $2; exit}' || true
}

# ---- Postfix
# make_postfix NAME MILTER(0|1): prints the config folder; sets PF_PORT_<NAME>.
make_postfix() {
	local name=$1 milter=$2 d=$W/pf-$1 port
	port=$(free_port)
	mkdir -p "$d/queue" "$d/data"
	chown postfix "$d/data"
	cat >"$d/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = $name.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:$SINK_PORT
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
maillog_file = $d/maillog
maillog_file_prefixes = $W
default_process_limit = 100
EOF
	if [ "$milter" = 1 ]; then
		cat >>"$d/main.cf" <<EOF
smtpd_milters = unix:$W/odkim/opendkim.sock
non_smtpd_milters =
milter_default_action = tempfail
EOF
	fi
	cat >"$d/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
	# Postfix prints its errors only to a terminal (or the log it has not
	# started yet): script(1) gives it one.
	if ! script -qec "postfix -c $d check" /dev/null >"$d/check.out"; then
		cat "$d/check.out" >&2
		exit 1
	fi
	script -qec "postfix -c $d start" /dev/null >/dev/null
	postfixes+=("$d")
	wait_port 127.0.0.1 "$port"
	printf -v "PF_PORT_$name" '%s' "$port"
	touch "$d/maillog"
}


# ---- OpenDKIM as a milter
make_opendkim() {
	local d=$W/odkim
	mkdir -p "$d"
	openssl genrsa -out "$d/s1.private" 2048 2>/dev/null
	cat >"$d/opendkim.conf" <<EOF
Mode s
Domain example.com
Selector s1
KeyFile $d/s1.private
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
Socket local:$d/opendkim.sock
UMask 000
Syslog no
RequireSafeKeys no
PidFile $d/opendkim.pid
EOF
	start opendkim -f -x "$d/opendkim.conf" >/dev/null 2>&1
	for _ in $(seq 200); do [ -S "$d/opendkim.sock" ] && return 0; sleep 0.05; done
	log "opendkim did not start"
	exit 1
}

# ---- one timed run: prints messages/s
# run_dkimd FILE COUNT [DATA_DIR BINARY]
run_dkimd() {
	local d=${3:-$W/dkimd-data} t0 t1 n
	dkimd_start "$d" "127.0.0.1:$SINK_PORT" "${4:-}" # a fresh process for each run
	t0=$(now)
	smtp-source -s "$SESSIONS" -m "$2" -F "$1" -f srv@example.com -t bob@example.net "$DKIMD_RELAY" >/dev/null ||
		log "smtp-source failed against dkimd"
	while :; do
		n=$(metric dkimd_queue_delivered_total)
		[ "${n:-0}" -ge "$2" ] && break
		if [ "$(echo "$(now) - $t0 > $RUN_TIMEOUT" | bc)" = 1 ]; then log "dkimd: only ${n:-0} of $2 delivered"; break; fi
		sleep 0.05
	done
	t1=$(now)
	local ticks
	ticks=$(cpu_ticks "$DKIMD_PID")
	dkimd_stop
	# messages/s, and dkimd's CPU milliseconds per message (user + system,
	# all threads, from its start: the start itself is a few ms)
	printf '%.1f %.3f\n' "$(echo "$2 / ($t1 - $t0)" | bc -l)" "$(echo "$ticks * 1000 / $TCK / $2" | bc -l)"
}

# run_postfix DIR PORT FILE COUNT
run_postfix() {
	local d=$1 base t0 t1 n
	base=$(sent_count "$d")
	t0=$(now)
	smtp-source -s "$SESSIONS" -m "$4" -F "$3" -f srv@example.com -t bob@example.net "127.0.0.1:$2" >/dev/null ||
		log "smtp-source failed against $d"
	while :; do
		n=$(($(sent_count "$d") - base))
		[ "$n" -ge "$4" ] && break
		if [ "$(echo "$(now) - $t0 > $RUN_TIMEOUT" | bc)" = 1 ]; then log "$d: only $n of $4 delivered"; break; fi
		sleep 0.05
	done
	t1=$(now)
	echo "$4 / ($t1 - $t0)" | bc -l | xargs printf '%.1f\n'
}

# check_signed NAME PORT: one message through a dumping sink, checks the
# DKIM-Signature the next hop got (so that a misconfigured signer cannot
# look fast).
check_signed() {
	local dump=$W/dump-$1 port
	mkdir -p "$dump" && chown nobody "$dump"
	port=$(free_port)
	start smtp-sink -u nobody -d "$dump/%M." "127.0.0.1:$port" 16 >/dev/null
	local p=$LAST_PID name=$1
	shift
	wait_port 127.0.0.1 "$port"
	"$@" "$port"
	for _ in $(seq 200); do [ -n "$(ls -A "$dump")" ] && break; sleep 0.05; done
	kill -- "-$p" 2>/dev/null || true
	if grep -q '^DKIM-Signature: .*a=rsa-sha256' "$dump"/* 2>/dev/null ||
		grep -A3 '^DKIM-Signature:' "$dump"/* 2>/dev/null | grep -q 'a=rsa-sha256'; then
		log "$name: signed (rsa-sha256) as expected"
	else
		log "$name: the message at the next hop is not signed"
		exit 1
	fi
}

throughput() {
	setup_dkimd "$W/dkimd-data"
	if [ -n "$BASELINE" ]; then
		setup_dkimd "$W/dkimd-base-data" "$W/dkimd-base" # its own data, its own binary
	fi
	if [ "$ONLY_DKIMD" != 1 ]; then
		make_opendkim
		make_postfix plain 0
		make_postfix odkim 1
	fi
	local pf_plain=$W/pf-plain pf_odkim=$W/pf-odkim

	# Sanity: both signers sign (dkimd and Postfix+OpenDKIM), through a
	# second sink that keeps what it gets.
	sig_dkimd() {
		dkimd_start "$W/dkimd-data" "127.0.0.1:$1"
		smtp-source -m 1 -F "$W/m2k.eml" -f srv@example.com -t bob@example.net "$DKIMD_RELAY"
		for _ in $(seq 200); do [ "$(metric dkimd_queue_delivered_total)" = 1 ] && break; sleep 0.05; done
		dkimd_stop
	}
	check_signed dkimd sig_dkimd
	sig_odkim() {
		postconf -c "$pf_odkim" -e "relayhost = [127.0.0.1]:$1"
		postfix -c "$pf_odkim" reload >/dev/null 2>&1
		sleep 1
		smtp-source -m 1 -F "$W/m2k.eml" -f srv@example.com -t bob@example.net "127.0.0.1:$PF_PORT_odkim"
		for _ in $(seq 200); do [ "$(sent_count "$pf_odkim")" -ge 1 ] && break; sleep 0.05; done
		postconf -c "$pf_odkim" -e "relayhost = [127.0.0.1]:$SINK_PORT"
		postfix -c "$pf_odkim" reload >/dev/null 2>&1
		sleep 1
	}
	[ "$ONLY_DKIMD" = 1 ] || check_signed postfix+opendkim sig_odkim

	local res=$W/results
	: >"$res"
	# The systems run in a different order each round (rotated by one), so
	# that what one run leaves behind falls on every system alike: on this
	# machine's ext4 without a journal, allocating an inode skips every inode
	# deleted in the last minute, and a run right after another dkimd's
	# (whose spool sits in the same block group) paid ~10 % more CPU for it.
	local systems=(dkimd)
	[ -n "$BASELINE" ] && systems+=(dkimd@base)
	[ "$ONLY_DKIMD" = 1 ] || systems+=(postfix pf+odkim)
	for r in $(seq "$RUNS"); do
		for size in 2k 200k; do
			local f=$W/m$size.eml count=$COUNT_SMALL n=${#systems[@]} i sys rate cpu
			[ "$size" = 200k ] && count=$COUNT_LARGE
			for ((i = 0; i < n; i++)); do
				sys=${systems[$(((i + r - 1) % n))]} cpu=
				case $sys in
				dkimd) read -r rate cpu < <(run_dkimd "$f" "$count") ;;
				dkimd@base) read -r rate cpu < <(run_dkimd "$f" "$count" "$W/dkimd-base-data" "$W/dkimd-base") ;;
				postfix) rate=$(run_postfix "$pf_plain" "$PF_PORT_plain" "$f" "$count") ;;
				pf+odkim) rate=$(run_postfix "$pf_odkim" "$PF_PORT_odkim" "$f" "$count") ;;
				esac
				log "round $r, $size x $count: $sys $rate/s${cpu:+, $cpu ms CPU/msg}"
				echo "$size $sys $rate $cpu" >>"$res"
			done
		done
	done

	med() { awk -v s="$1" -v n="$2" -v c="${3:-3}" '$1==s && $2==n {print $c}' "$res" | median; }
	ratio() { [ -n "$1" ] && [ -n "$2" ] && printf '%.2f' "$(echo "$1/$2" | bc -l)" || printf -- '-'; }
	echo
	echo "Relay throughput, messages/s, median of $RUNS runs ($SESSIONS sessions; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"
	printf '%-6s %8s %12s %8s %10s %14s %18s\n' size dkimd "dkimd ms CPU" postfix pf+odkim dkimd/postfix dkimd/pf+odkim
	for size in 2k 200k; do
		local a b c
		a=$(med $size dkimd) b=$(med $size postfix) c=$(med $size pf+odkim)
		printf '%-6s %8s %12s %8s %10s %14s %18s\n' "$size" "$a" "$(med $size dkimd 4)" "${b:--}" "${c:--}" "$(ratio "$a" "$b")" "$(ratio "$a" "$c")"
	done
	if [ -n "$BASELINE" ]; then
		echo "dkimd@$BASELINE, the same rounds (CPU: ms per message; after/before of the medians):"
		printf '%-6s %12s %14s %14s %14s\n' size dkimd@base "base ms CPU" after/before "CPU after/before"
		for size in 2k 200k; do
			printf '%-6s %12s %14s %14s %14s\n' "$size" "$(med $size dkimd@base)" "$(med $size dkimd@base 4)" \
				"$(ratio "$(med $size dkimd)" "$(med $size dkimd@base)")" "$(ratio "$(med $size dkimd 4)" "$(med $size dkimd@base 4)")"
		done
	fi
	echo "all runs (messages/s, and ms CPU per message for dkimd):"
	awk '{r[$1" "$2] = r[$1" "$2] " " $3 ($4 == "" ? "" : "/" $4)} END {for (k in r) print "  " k ":" r[k]}' "$res" | sort
}

backlog() {
	local d=$W/backlog-data users down
	users=$(((BACKLOG_COUNT + 999) / 1000))
	log "backlog: $BACKLOG_COUNT messages from $users IP users, next hop down"
	DKIMD_DATA=$d "$W/dkimd" domain add example.com >/dev/null
	DKIMD_DATA=$d "$W/dkimd" key generate --domain example.com --selector s1 --bits 2048 >/dev/null
	DKIMD_DATA=$d "$W/dkimd" key activate --domain example.com --selector s1 --force >/dev/null
	for i in $(seq "$users"); do
		DKIMD_DATA=$d "$W/dkimd" user add --domain example.com --name "bl$i" --ip "127.0.$((1 + i / 250)).$((1 + i % 250))" >/dev/null
	done
	down=$(free_port) # nothing listens here until the sink is started
	dkimd_start "$d" "127.0.0.1:$down"
	local t0
	t0=$(now)
	"$PY" - "$DKIMD_RELAY" "$DKIMD_PID" "$users" "$BACKLOG_COUNT" <<'EOF'
import smtplib, sys, threading, time
relay, pid, users, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
host, port = relay.rsplit(":", 1)
per_user = (total + users - 1) // users
lock = threading.Lock()
accepted = refused = 0
t0 = time.time()

def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def sample():
    print("backlog: queued=%6d rss=%7.1f MiB t=%5.0fs" % (accepted, rss_kib() / 1024, time.time() - t0), flush=True)

sample()
def worker(us):
    global accepted, refused
    for u in us:
        i = u + 1
        src = "127.0.%d.%d" % (1 + i // 250, 1 + i % 250)
        n = min(per_user, total - u * per_user)
        sent = 0
        while sent < n:
            try:
                s = smtplib.SMTP(host, int(port), source_address=(src, 0), timeout=120)
                while sent < n:
                    msg = ("From: Backlog <bl%d@example.com>\r\nTo: bob@example.net\r\n"
                           "Subject: backlog %d/%d\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
                           "Message-ID: <bl-%d-%d@example.com>\r\n\r\n" % (i, u, sent, u, sent)
                           + "A small queued message, about one kilobyte in all.\r\n" * 16)
                    s.sendmail("bl%d@example.com" % i, ["bob@example.net"], msg.encode())
                    sent += 1
                    with lock:
                        accepted += 1
                        if accepted % 10000 == 0:
                            sample()
                s.quit()
            except (smtplib.SMTPException, OSError) as e:
                with lock:
                    refused += 1
                    if refused <= 5:
                        print("backlog: client error (will retry): %s" % e, flush=True)
                time.sleep(1)

threads = []
k = 8
for j in range(k):
    th = threading.Thread(target=worker, args=(list(range(j, users, k)),))
    th.start()
    threads.append(th)
for th in threads:
    th.join()
sample()
print("backlog: %d accepted in %.0fs (%.0f/s), %d client errors" % (accepted, time.time() - t0, accepted / (time.time() - t0), refused), flush=True)
EOF
	local i
	for i in 1 2 3; do
		sleep 10
		echo "backlog: settled +$((i * 10))s rss=$(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$DKIMD_PID/status") queue=$(metric dkimd_queue_messages)"
	done
	log "starting the sink on the next-hop port"
	local t1 n q
	start smtp-sink -u nobody "127.0.0.1:$down" 256 >/dev/null
	t1=$(now)
	local last=0
	while :; do
		q=$(metric dkimd_queue_messages)
		n=$(metric dkimd_queue_delivered_total)
		local el
		el=$(printf '%.0f' "$(echo "$(now) - $t1" | bc)")
		if ! kill -0 "$DKIMD_PID" 2>/dev/null; then
			log "backlog: dkimd exited during the drain; its log ends:"
			tail -20 "$d/serve.log" >&2
			return 1
		fi
		if [ "$el" -ge "$last" ]; then
			echo "backlog: drain t=${el}s queued=$q delivered=$n rss=$(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$DKIMD_PID/status")"
			last=$((last + 30))
		fi
		[ "${q:-1}" = 0 ] && break
		if [ "$el" -ge "$DRAIN_TIMEOUT" ]; then log "backlog: not drained after ${DRAIN_TIMEOUT}s"; break; fi
		sleep 1
	done
	echo "backlog: drained in $(printf '%.0f' "$(echo "$(now) - $t1" | bc)")s after the sink came back; delivered=$(metric dkimd_queue_delivered_total) deferred_total=$(metric dkimd_queue_deferred_total) bounced=$(metric dkimd_queue_bounced_total)"
	dkimd_stop
}

[ "$THROUGHPUT" = 1 ] && throughput
[ "$BACKLOG" = 1 ] && backlog
exit 0

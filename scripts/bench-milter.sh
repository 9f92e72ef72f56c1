#!/usr/bin/env bash
# Milter throughput and milter CPU on loopback, side by side in one run (the
# "Milter" section of docs/performance.md):
#
#   postfix      a private Postfix instance relaying, no milter
#   pf+odkim     the same with the OpenDKIM milter (UNIX socket,
#                relaxed/relaxed), one instance per algorithm
#   pf+dkimd     the same with "dkimd serve --listen-milter unix:..." (no
#                relay ports), an IP user for 127.0.0.1
#
# for RSA-2048 and Ed25519 (the From domain picks dkimd's key: example.com
# has an RSA key, ed.example an Ed25519 one), all relaying to
# "smtp-sink -u nobody 127.0.0.1:PORT 256", loaded with "smtp-source -s
# SESSIONS -m COUNT -F FILE" with a 2 KiB and a 2 MiB message. A run is timed
# from the start of smtp-source until Postfix logged status=sent for every
# message; the milter's CPU (user+system, /proc/PID/stat) over the run gives
# CPU-seconds per 1,000 messages. Rounds are interleaved so that load from
# other programs falls on all alike; medians of RUNS rounds are printed.
# Compare ratios, never absolute numbers across machines.
#
# With FLOOR=1 dkimd has no user for 127.0.0.1: it answers "accept, nothing
# to sign" at MAIL and Postfix sends it nothing more of the message, which
# measures what a milter session costs dkimd before any DKIM work.
#
# Usage: scripts/bench-milter.sh                       (about 5 minutes on 2 cores)
#        RUNS=1 COUNT_SMALL=300 COUNT_LARGE=20 scripts/bench-milter.sh
#        FLOOR=1 RUNS=2 COUNT_SMALL=2000 COUNT_LARGE=2 scripts/bench-milter.sh
# Needs: root (Postfix), go, postfix (smtp-source, smtp-sink), opendkim,
# openssl, /usr/bin/python3. Never binds port 25; the system's Postfix is not
# touched. Everything lives in a temporary folder, removed at exit with every
# process the script started (KEEP=1 keeps the folder).
set -euo pipefail

RUNS=${RUNS:-3}
FLOOR=${FLOOR:-0}
SESSIONS=${SESSIONS:-8}
COUNT_SMALL=${COUNT_SMALL:-2000}
COUNT_LARGE=${COUNT_LARGE:-60}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}

PY=/usr/bin/python3
root=$(cd "$(dirname "$0")/.." && pwd)
for c in go postfix smtp-source smtp-sink opendkim openssl bc "$PY"; do
	command -v "$c" >/dev/null || { echo "bench-milter: $c not found (apt-get install postfix opendkim openssl bc)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench-milter: must run as root (private Postfix instances)" >&2; exit 2; }

BENCH=bench-milter
. "$root/scripts/bench-lib.sh"
postfixes=()
stop_services() { for d in "${postfixes[@]}"; do postfix -c "$d" stop >/dev/null 2>&1; done; }

log "work folder $W"
log "building dkimd"
(cd "$root" && go build -o "$W/dkimd" ./cmd/dkimd)

# ---- messages (LF line ends: smtp-source sends each line with CRLF)
mkmsg() { # FILE BYTES FROM_DOMAIN
	"$PY" - "$1" "$2" "$3" <<'EOF'
import sys
path, size, dom = sys.argv[1], int(sys.argv[2]), sys.argv[3]
head = ("From: Bench Server <srv@%s>\nTo: Bob <bob@example.net>\n"
        "Subject: milter benchmark\nDate: Sun, 29 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <bench-%d@%s>\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n\n" % (dom, size, dom))
line = "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\n"
body = line * ((size - len(head)) // len(line))
body += "x" * (size - len(head) - len(body) - 1) + "\n"
open(path, "w").write(head + body)
EOF
}
for s in 2k:2048 2m:2097152; do
	mkmsg "$W/rsa-${s%%:*}.eml" "${s#*:}" example.com
	mkmsg "$W/ed-${s%%:*}.eml" "${s#*:}" ed.example
done

SINK_PORT=$(free_port)
start smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 256 >/dev/null
wait_port 127.0.0.1 "$SINK_PORT"

# ---- dkimd as a milter
D=$W/dkimd-data
DK() { DKIMD_DATA=$D "$W/dkimd" "$@" >/dev/null; }
DK domain add example.com
DK domain add ed.example
DK key generate --domain example.com --selector s1 --bits 2048
DK key activate --domain example.com --selector s1 --force
DK key generate --domain ed.example --selector e1 --algorithm ed25519
DK key activate --domain ed.example --selector e1 --force
[ "$FLOOR" = 1 ] || DK user add --domain example.com --name srv --ip 127.0.0.1 --allow-domain ed.example
# The default log level (info): one line per message, as Postfix and
# OpenDKIM log too.
DKIMD_DATA=$D start "$W/dkimd" serve --listen-http 127.0.0.1:0 --listen-submission "" --listen-submissions "" \
	--listen-relay "" --listen-milter "unix:$W/dkimd.sock" --milter-socket-mode 0666 2>"$W/dkimd.log" >/dev/null
DKIMD_PID=$LAST_PID
for _ in $(seq 400); do [ -S "$W/dkimd.sock" ] && break; sleep 0.05; done
[ -S "$W/dkimd.sock" ] || { log "dkimd did not start"; cat "$W/dkimd.log" >&2; exit 1; }

# ---- OpenDKIM as a milter, one per key
make_opendkim() { # NAME DOMAIN KEYFILE ALG: sets ODKIM_PID_<NAME>
	local d=$W/odkim-$1
	mkdir -p "$d"
	cat >"$d/opendkim.conf" <<EOF
Mode s
Domain $2
Selector s1
KeyFile $3
Canonicalization relaxed/relaxed
SignatureAlgorithm $4
Socket local:$d/opendkim.sock
UMask 000
Syslog no
RequireSafeKeys no
PidFile $d/opendkim.pid
EOF
	start opendkim -f -x "$d/opendkim.conf" >/dev/null 2>&1
	printf -v "ODKIM_PID_$1" '%s' "$LAST_PID"
	for _ in $(seq 200); do [ -S "$d/opendkim.sock" ] && return 0; sleep 0.05; done
	log "opendkim $1 did not start"
	exit 1
}
openssl genrsa -out "$W/odkim-rsa.private" 2048 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$W/odkim-ed.private" 2>/dev/null
make_opendkim rsa example.com "$W/odkim-rsa.private" rsa-sha256
make_opendkim ed ed.example "$W/odkim-ed.private" ed25519-sha256

# ---- Postfix
make_postfix() { # NAME MILTER_SOCKET|"" : sets PF_PORT_<NAME>
	local name=$1 d=$W/pf-$1 port
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
message_size_limit = 52428800
biff = no
maillog_file = $d/maillog
maillog_file_prefixes = $W
default_process_limit = 100
EOF
	if [ -n "$2" ]; then
		cat >>"$d/main.cf" <<EOF
smtpd_milters = unix:$2
non_smtpd_milters =
milter_default_action = tempfail
milter_mail_macros = i {auth_type} {auth_authen} {auth_author} {mail_addr} {client_addr}
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
make_postfix plain ""
make_postfix odkimrsa "$W/odkim-rsa/opendkim.sock"
make_postfix odkimed "$W/odkim-ed/opendkim.sock"
make_postfix dkimd "$W/dkimd.sock"

# check_signed PF_NAME MSG ALG: one message through a dumping next hop; the
# signature must be there (a misconfigured signer cannot look fast).
check_signed() {
	local d=$W/pf-$1 dump=$W/dump-$1-$3 port base
	mkdir -p "$dump" && chown nobody "$dump"
	port=$(free_port)
	start smtp-sink -u nobody -d "$dump/%M." "127.0.0.1:$port" 16 >/dev/null
	local p=$LAST_PID
	wait_port 127.0.0.1 "$port"
	postconf -c "$d" -e "relayhost = [127.0.0.1]:$port"
	postfix -c "$d" reload >/dev/null 2>&1
	sleep 1
	local pv="PF_PORT_$1"
	base=$(sent_count "$d")
	smtp-source -m 1 -F "$2" -f srv@example.com -t bob@example.net "127.0.0.1:${!pv}"
	for _ in $(seq 200); do [ "$(sent_count "$d")" -gt "$base" ] && break; sleep 0.05; done
	kill -- "-$p" 2>/dev/null || true
	postconf -c "$d" -e "relayhost = [127.0.0.1]:$SINK_PORT"
	postfix -c "$d" reload >/dev/null 2>&1
	sleep 1
	if grep -A4 '^DKIM-Signature:' "$dump"/* 2>/dev/null | grep -q "a=$3"; then
		log "$1: signed ($3) as expected"
	else
		log "$1: the message at the next hop is not signed with $3"
		exit 1
	fi
}
check_signed odkimrsa "$W/rsa-2k.eml" rsa-sha256
check_signed odkimed "$W/ed-2k.eml" ed25519-sha256
if [ "$FLOOR" != 1 ]; then
	check_signed dkimd "$W/rsa-2k.eml" rsa-sha256
	check_signed dkimd "$W/ed-2k.eml" ed25519-sha256
fi

# run PF_NAME FILE COUNT [MILTER_PID]: prints "messages/s cpu-s-per-1000"
run() {
	local d=$W/pf-$1 pv="PF_PORT_$1" base t0 t1 c0=0 c1=0 n
	base=$(sent_count "$d")
	[ -n "${4:-}" ] && c0=$(cpu_ticks "$4")
	t0=$(now)
	smtp-source -s "$SESSIONS" -m "$3" -F "$2" -f srv@example.com -t bob@example.net "127.0.0.1:${!pv}" >/dev/null ||
		log "smtp-source failed against $1"
	while :; do
		n=$(($(sent_count "$d") - base))
		[ "$n" -ge "$3" ] && break
		if [ "$(echo "$(now) - $t0 > $RUN_TIMEOUT" | bc)" = 1 ]; then log "$1: only $n of $3 delivered"; break; fi
		sleep 0.05
	done
	t1=$(now)
	[ -n "${4:-}" ] && c1=$(cpu_ticks "$4")
	printf '%.1f %.3f\n' "$(echo "$3 / ($t1 - $t0)" | bc -l)" "$(echo "($c1 - $c0) / $TCK * 1000 / $3" | bc -l)"
}

res=$W/results
: >"$res"
for r in $(seq "$RUNS"); do
	for size in 2k 2m; do
		count=$COUNT_SMALL
		[ "$size" = 2m ] && count=$COUNT_LARGE
		for alg in rsa ed; do
			f=$W/$alg-$size.eml
			odkim=odkimrsa opid=$ODKIM_PID_rsa
			[ "$alg" = ed ] && odkim=odkimed opid=$ODKIM_PID_ed
			# A new order each round, so that what one run leaves behind
			# (deleted queue files, which an ext4 without a journal makes
			# the next run's inode allocations skip) falls on all alike.
			for i in 0 1 2; do
				case $(((i + r - 1) % 3)) in
				0) a=$(run plain "$f" "$count") ;;
				1) b=$(run "$odkim" "$f" "$count" "$opid") ;;
				2) c=$(run dkimd "$f" "$count" "$DKIMD_PID") ;;
				esac
			done
			log "round $r, $alg $size x $count (msg/s, milter CPU-s/1000): postfix $a, +opendkim $b, +dkimd $c"
			echo "$size $alg postfix $a" >>"$res"
			echo "$size $alg pf+odkim $b" >>"$res"
			echo "$size $alg pf+dkimd $c" >>"$res"
		done
	done
done

col() { awk -v s="$1" -v a="$2" -v k="$3" -v f="$4" '$1==s && $2==a && $3==k {print $f}' "$res" | median; }
echo
echo "Milter, median of $RUNS runs ($SESSIONS sessions; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-5s %-4s %8s %9s %9s %9s %9s %14s %16s %14s\n' size alg postfix pf+odkim pf+dkimd odkim_cpu dkimd_cpu dkimd/postfix odkim/postfix msgs/cpu-s
for size in 2k 2m; do
	for alg in rsa ed; do
		a=$(col $size $alg postfix 4)
		b=$(col $size $alg pf+odkim 4)
		c=$(col $size $alg pf+dkimd 4)
		bc_=$(col $size $alg pf+odkim 5)
		cc=$(col $size $alg pf+dkimd 5)
		printf '%-5s %-4s %8s %9s %9s %9s %9s %14.2f %16.2f %14.2f\n' "$size" "$alg" "$a" "$b" "$c" "$bc_" "$cc" \
			"$(echo "$c/$a" | bc -l)" "$(echo "$b/$a" | bc -l)" "$(echo "$bc_/$cc" | bc -l)"
	done
done
echo "(cpu: milter CPU-seconds per 1,000 messages; msgs/cpu-s: dkimd's messages per milter CPU-second over OpenDKIM's)"
echo "all runs (msg/s cpu):"
awk '{r[$1" "$2" "$3] = r[$1" "$2" "$3] "  " $4 " " $5} END {for (k in r) print "  " k ":" r[k]}' "$res" | sort

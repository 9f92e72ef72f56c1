#!/usr/bin/env bash
# Reproduces the table of docs/performance.md: dkimd's Go benchmarks, the
# machine's own limit (openssl speed), "dkimd bench sign", and the peers
# (dkimpy, OpenDKIM) signing the same 2 KiB message, all in one run. It
# prints medians and the ratios the targets are stated in.
#
# Everything is interleaved round by round (COUNT rounds), so that load from
# other programs falls on all of it alike: compare the ratios, not the
# absolute numbers, and never across runs or machines.
#
# Usage: scripts/bench.sh            (about 5 minutes on 2 cores)
#        COUNT=3 BENCHTIME=0.2s DURATION=1s PEER_SECONDS=1 OPENSSL_SECONDS=1 scripts/bench.sh
# Needs: go; openssl, /usr/bin/python3 with python3-dkim, opendkim (each peer
# is skipped with a note when missing).
set -euo pipefail

COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-0.5s}
DURATION=${DURATION:-3s}
PEER_SECONDS=${PEER_SECONDS:-3}
OPENSSL_SECONDS=${OPENSSL_SECONDS:-3}
PY=/usr/bin/python3
OPENDKIM=$(command -v opendkim || echo /usr/sbin/opendkim)

root=$(cd "$(dirname "$0")/.." && pwd)
keys=$root/internal/dkim/testdata/keys
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== machine" >&2
{
	echo "nproc: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "go: $(go version | cut -d' ' -f3-)"
	echo "openssl: $(openssl version 2>/dev/null || echo missing)"
	echo "opendkim: $("$OPENDKIM" -V 2>/dev/null | head -1 | sed 's/.*Filter //' || echo missing)"
	echo "dkimpy: $($PY -c 'import importlib.metadata as m; print(m.version("dkimpy"))' 2>/dev/null || echo missing)"
} | tee "$out/machine.txt" >&2

echo "== build" >&2
(cd "$root" && go test -c -o "$out/dkim.test" ./internal/dkim && go build -o "$out/dkimd" ./cmd/dkimd)

# The 2 KiB message of "dkimd bench sign" (internal/cli/bench.go), for the
# peers.
$PY - "$out/msg.eml" <<'EOF'
import sys
m = ("From: Bench <bench@example.com>\r\nTo: Someone <someone@example.net>\r\n"
     "Subject: dkimd benchmark message\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
     "Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n"
     "Content-Type: text/plain; charset=utf-8\r\n\r\n")
line = ("The quick brown fox jumps over the lazy dog. " * 2)[:70] + "\r\n"
while len(m) < 2048:
    m += line
open(sys.argv[1], "wb").write((m[:2046] + "\r\n").encode())
EOF

# dkimpy: sign the message in a loop for PEER_SECONDS, one process, one core.
have_dkimpy=0
if $PY -c 'import dkim' 2>/dev/null; then have_dkimpy=1; else echo "dkimpy missing (apt-get install python3-dkim): skipped" >&2; fi
dkimpy() { # ALG
	$PY - "$1" "$out/msg.eml" "$keys" "$PEER_SECONDS" <<'EOF'
import base64, json, sys, time
import dkim
alg, msgfile, keys, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
msg = open(msgfile, "rb").read()
signers = []
if "rsa" in alg:
    signers.append((b"rsa", open(keys + "/rsa2048.pem", "rb").read(), b"rsa-sha256"))
if "ed25519" in alg:
    signers.append((b"ed", open(keys + "/ed25519.seed", "rb").read().strip(), b"ed25519-sha256"))
heads = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"]
n, start = 0, time.perf_counter()
while time.perf_counter() - start < secs:
    for sel, key, a in signers:
        dkim.sign(msg, sel, b"example.com", key, canonicalize=(b"relaxed", b"relaxed"),
                  include_headers=heads, signature_algorithm=a)
    n += 1
print(json.dumps({"peer": "dkimpy", "algorithm": alg, "messages_per_second": n / (time.perf_counter() - start)}))
EOF
}

# OpenDKIM signs in test mode (opendkim -t FILE,FILE,...), its real signing
# library without the milter protocol. Without a Postfix (or another MTA) to
# drive the milter there is no fairer way; opendkim-testmsg signs rsa-sha1
# only. The rate is (N-1) / (t(N files) - t(1 file)), so start-up and key
# loading are left out.
have_opendkim=0
if [ -x "$OPENDKIM" ]; then have_opendkim=1; else echo "opendkim missing (apt-get install opendkim): skipped" >&2; fi
if [ $have_opendkim = 1 ]; then
	od=$out/opendkim
	mkdir -p "$od"
	cp "$keys/rsa2048.pem" "$od/rsa.pem"
	# Ed25519 as PKCS #8: the fixed DER prefix of RFC 8410, then the seed.
	$PY -c 'import base64,sys; s=base64.b64decode(open(sys.argv[1]).read()); d=bytes.fromhex("302e020100300506032b657004220420")+s; print("-----BEGIN PRIVATE KEY-----\n"+base64.b64encode(d).decode()+"\n-----END PRIVATE KEY-----")' "$keys/ed25519.seed" >"$od/ed.pem"
	for a in rsa ed25519; do
		key=rsa.pem algname=rsa-sha256
		[ $a = ed25519 ] && key=ed.pem algname=ed25519-sha256
		echo "key example.com:sel:$od/$key" >"$od/keytable.$a"
		echo "* key" >"$od/signingtable"
		printf 'Mode s\nKeyTable file:%s\nSigningTable refile:%s\nSignatureAlgorithm %s\nCanonicalization relaxed/relaxed\nSyslog no\nRequireSafeKeys false\nTemporaryDirectory %s\n' \
			"$od/keytable.$a" "$od/signingtable" "$algname" "$od" >"$od/conf.$a"
	done
fi
opendkim_rate() { # ALG (rsa or ed25519)
	local many=1000 t1 tn
	[ "$1" = ed25519 ] && many=5000
	# A short relative name: the list is one argument, of at most 128 KiB.
	cp "$out/msg.eml" "$od/m"
	local files
	files=$($PY -c "print(','.join(['m']*$many))")
	time_it() { (cd "$od" && $PY -c 'import subprocess,sys,time; s=time.perf_counter(); subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,check=True); print(time.perf_counter()-s)' "$@"); }
	(cd "$od" && "$OPENDKIM" -x "conf.$1" -t m | grep -q '^DKIM-Signature') || { echo "opendkim did not sign" >&2; return 1; }
	t1=$(time_it "$OPENDKIM" -x "conf.$1" -t m)
	tn=$(time_it "$OPENDKIM" -x "conf.$1" -t "$files")
	$PY -c 'import json,sys; n,t1,tn=int(sys.argv[2]),float(sys.argv[3]),float(sys.argv[4]); print(json.dumps({"peer":"opendkim","algorithm":sys.argv[1],"messages_per_second":(n-1)/(tn-t1)}))' "$1" "$many" "$t1" "$tn"
}

for i in $(seq "$COUNT"); do
	echo "== round $i of $COUNT" >&2
	(cd "$root/internal/dkim" && "$out/dkim.test" -test.run '^$' -test.bench . -test.benchtime "$BENCHTIME") >>"$out/go.txt"
	# RSA both ways: through OpenSSL (serve's default when libcrypto loads)
	# and with Go's crypto/rsa.
	for a in rsa ed25519 rsa+ed25519; do
		for lib in auto off; do
			if [ "$a" = ed25519 ] && [ "$lib" = off ]; then continue; fi
			"$out/dkimd" bench sign --algorithm "$a" --openssl "$lib" --duration "$DURATION" --json | $PY -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))' >>"$out/cli.jsonl"
		done
	done
	if [ $have_dkimpy = 1 ]; then
		for a in rsa ed25519 rsa+ed25519; do dkimpy "$a" >>"$out/peers.jsonl"; done
	fi
	if [ $have_opendkim = 1 ]; then
		for a in rsa ed25519; do opendkim_rate "$a" >>"$out/peers.jsonl"; done
	fi
	if [ "$i" = 1 ] && command -v openssl >/dev/null; then
		echo "== openssl speed" >&2
		openssl speed -seconds "$OPENSSL_SECONDS" rsa2048 ed25519 sha256 >"$out/openssl.txt" 2>/dev/null
	fi
done
touch "$out/peers.jsonl" "$out/openssl.txt"

if [ -n "${KEEP:-}" ]; then
	mkdir -p "$KEEP" && cp "$out"/*.txt "$out"/*.jsonl "$KEEP"/
	echo "raw output kept in $KEEP" >&2
fi

$PY - "$out" <<'EOF'
import collections, json, re, statistics, sys
d = sys.argv[1]
med = statistics.median

# Go benchmarks: per round, ns/op (wall) and cpu-ns/op (CPU time of the
# process), in the order the rounds ran.
rounds = collections.defaultdict(list)
for line in open(d + "/go.txt"):
    m = re.match(r"Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op.*?([\d.]+) cpu-ns/op", line)
    if m:
        rounds[m.group(1)].append((float(m.group(2)), float(m.group(3))))

def ratio(num, den, unit=1):
    """Median over rounds of num/den, by CPU time and by wall time."""
    out = []
    for k in (1, 0):
        out.append(med(a[k] / b[k] for a, b in zip(rounds[num], rounds[den])) * unit)
    return out

def row(name, value, ratio_text):
    print(f"  {name:<44} {value:>16}  {ratio_text}")

print()
print(open(d + "/machine.txt").read().strip())
n = len(rounds["RawRSASign2048"])
print(f"\nGo benchmarks, median of {n} interleaved rounds; ratios are medians of per-round ratios,")
print("by CPU time (cpu-ns/op) and, in brackets, by wall time (ns/op).\n")
def ns(b, k=1): return med(x[k] for x in rounds[b])
def per_s(b): return f"{1e9 / ns(b):,.0f}/s"
def mbs(b, size): return f"{size / ns(b) * 1e3:,.0f} MB/s"

row("RawRSASign2048 (rsa.SignPKCS1v15)", per_s("RawRSASign2048"), "1 (ceiling)")
for b in ("rsa2048", "rsa2048+ed25519"):
    c, w = ratio("RawRSASign2048", "Sign2KiB/" + b)
    row(f"Sign2KiB/{b}", per_s("Sign2KiB/" + b), f"{c:.2f} x raw RSA (target >= 0.9) [{w:.2f}]")
row("RawEd25519Sign (ed25519.Sign)", per_s("RawEd25519Sign"), "1 (ceiling)")
c, w = ratio("RawEd25519Sign", "Sign2KiB/ed25519")
row("Sign2KiB/ed25519", per_s("Sign2KiB/ed25519"), f"{c:.2f} x raw Ed25519 (target >= 0.8) [{w:.2f}]")
c, w = ratio("Sign2KiB/rsa2048+ed25519", "Sign2KiB/rsa2048")
row("  dual cost / RSA alone", "", f"{c:.2f} x (target <= 1.1) [{w:.2f}]")
for b in ("rsa2048", "ed25519"):
    row(f"Verify2KiB/{b}", per_s("Verify2KiB/" + b), "")
size = 2 << 20
row("SHA256_2MiB (crypto/sha256)", mbs("SHA256_2MiB", size), "1 (ceiling)")
for b in ("BodyCanon2MiB/relaxed", "BodyCanon2MiB/simple", "GoMsgauthBody2MiB/relaxed",
          "GoMsgauthBody2MiB/simple", "Sign2MiB/ed25519"):
    c, w = ratio("SHA256_2MiB", b)
    target = " (target >= 0.8)" if b == "BodyCanon2MiB/relaxed" else ""
    row(b, mbs(b, size), f"{c:.2f} x sha256{target} [{w:.2f}]")
for part in ("text", "html", "base64"):
    for cn in ("relaxed", "simple"):
        b = f"BodyCanon2MiBPart/{part}/{cn}"
        if rounds[b]:
            c, w = ratio("SHA256_2MiB", b)
            target = " (target >= 0.8)" if b == "BodyCanon2MiBPart/text/relaxed" else ""
            row(b, mbs(b, size), f"{c:.2f} x sha256{target} [{w:.2f}]")

# openssl speed: the machine's own limit.
ossl = open(d + "/openssl.txt").read()
o_rsa = re.search(r"^rsa\s+2048 bits\s+\S+s\s+\S+s\s+([\d.]+)", ossl, re.M)
o_ed = re.search(r"^\s*253 bits EdDSA \(Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)", ossl, re.M)
o_sha = re.search(r"^sha256\s+(.*)$", ossl, re.M)
raw_rsa = 1e9 / ns("RawRSASign2048", 0)
print("\nThe machine's limit (openssl speed, run once in round 1; compare by wall time):\n")
if o_rsa:
    v = float(o_rsa.group(1))
    row("openssl rsa2048 sign", f"{v:,.0f}/s", f"Go raw RSA = {raw_rsa / v:.2f} x openssl")
if o_ed:
    row("openssl ed25519 sign", f"{float(o_ed.group(1)):,.0f}/s", "")
if o_sha:
    v = float(o_sha.group(1).split()[-1].rstrip("k")) * 1e3 / 1e6
    row("openssl sha256 (16 KiB blocks)", f"{v:,.0f} MB/s", f"Go sha256 = {size / ns('SHA256_2MiB', 0) * 1e3 / v:.2f} x openssl")

# dkimd bench sign and the peers, one process on one core each.
def load(path):
    out = collections.defaultdict(list)
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            a = r["algorithm"]
            if r.get("rsa_library", "").startswith("go"):
                a += " (Go crypto/rsa)"
            out[(r.get("peer", "dkimd"), a)].append(r)
    return out
cli, peers = load(d + "/cli.jsonl"), load(d + "/peers.jsonl")
print("\nWhole 2 KiB messages, one process, wall time, medians over rounds:\n")
for a in ("rsa", "rsa (Go crypto/rsa)", "ed25519", "rsa+ed25519", "rsa+ed25519 (Go crypto/rsa)"):
    rs = cli[("dkimd", a)]
    if rs:
        rate = med(r["messages_per_second"] for r in rs)
        rr = med(r["raw_ratio"] for r in rs)
        row(f"dkimd bench sign {a}", f"{rate:,.0f}/s", f"{rr:.2f} x its raw signatures")
dkimd_rsa = med(r["messages_per_second"] for r in cli[("dkimd", "rsa")])
for (p, a), rs in sorted(peers.items()):
    rate = med(r["messages_per_second"] for r in rs)
    mine = cli.get(("dkimd", {"rsa": "rsa", "ed25519": "ed25519"}.get(a, a)))
    note = f"dkimd = {med(r['messages_per_second'] for r in mine) / rate:.1f} x" if mine else ""
    row(f"{p} {a}", f"{rate:,.0f}/s", note)
EOF

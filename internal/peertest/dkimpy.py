# Driver for dkimpy (python3-dkim), run by dkimd's peertest package as
#   /usr/bin/python3 -I dkimpy.py JOB.json
# JOB.json is {"records": {name: value}, "jobs": [...]}; each job is
#   {"op": "verify", "msg": PATH}
#   {"op": "sign", "msg": PATH, "selector": S, "domain": D, "key": K,
#    "algorithm": "rsa-sha256" | "ed25519-sha256" | "rsa-sha1", "canon": "relaxed/simple",
#    "headers": [names] or null, "length": bool}
# where K is a PKCS#1 PEM for RSA and the base64 seed for Ed25519. The answer,
# on stdout, is one JSON object per job in order:
#   verify: {"error": "", "sigs": [{"pass": bool, "reason": str,
#            "d": str, "s": str, "a": str}]}
#   sign:   {"error": "", "signature": BASE64 of the DKIM-Signature field}
# Nothing here touches the network: key records come from "records" only.
import base64
import json
import logging
import sys

import dkim
from dkim.util import parse_tag_value


class Capture(logging.Handler):
    """Keeps what dkimpy logs at warning and above: its reasons for failing."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def main():
    with open(sys.argv[1], "rb") as f:
        job = json.load(f)
    records = {k.lower().rstrip("."): v for k, v in job["records"].items()}

    def dnsfunc(name, timeout=5):
        # name arrives as bytes with a final dot.
        v = records.get(name.decode("ascii", "replace").lower().rstrip("."))
        return v.encode("ascii") if v is not None else None

    cap = Capture()
    logger = logging.getLogger("peertest")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(cap)

    out = []
    for j in job["jobs"]:
        with open(j["msg"], "rb") as f:
            msg = f.read()
        if j["op"] == "verify":
            out.append(verify(msg, dnsfunc, logger, cap))
        elif j["op"] == "sign":
            out.append(sign(msg, j, logger))
        else:
            out.append({"error": "unknown op %r" % j["op"]})
    json.dump(out, sys.stdout)


def describe(e):
    return "%s: %s" % (type(e).__name__, e)


def verify(msg, dnsfunc, logger, cap):
    try:
        d = dkim.DKIM(msg, logger=logger)
    except Exception as e:  # the message as a whole does not parse
        return {"error": describe(e), "sigs": []}
    fields = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
    sigs = []
    for i, value in enumerate(fields):
        r = {"pass": False, "reason": "", "d": "", "s": "", "a": ""}
        try:
            tags = parse_tag_value(value)
            for t in ("d", "s", "a"):
                r[t] = tags.get(t.encode(), b"").decode("ascii", "replace")
        except Exception:
            pass
        cap.lines = []
        try:
            r["pass"] = bool(d.verify(idx=i, dnsfunc=dnsfunc))
            if not r["pass"]:
                r["reason"] = "; ".join(cap.lines) or "signature did not verify"
        except Exception as e:
            r["reason"] = describe(e)
        sigs.append(r)
    return {"error": "", "sigs": sigs}


def sign(msg, j, logger):
    canon = tuple(c.encode() for c in j["canon"].split("/"))
    headers = j.get("headers")
    if headers is not None:
        headers = [h.encode() for h in headers]
    try:
        sig = dkim.sign(msg, j["selector"].encode(), j["domain"].encode(),
                        j["key"].encode(), canonicalize=canon,
                        signature_algorithm=j["algorithm"].encode(),
                        include_headers=headers, length=bool(j.get("length")),
                        logger=logger)
    except Exception as e:
        return {"error": describe(e), "signature": ""}
    return {"error": "", "signature": base64.b64encode(sig).decode("ascii")}


if __name__ == "__main__":
    main()

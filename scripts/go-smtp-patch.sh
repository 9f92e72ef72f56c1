#!/usr/bin/env bash
# scripts/go-smtp-patch.sh check | diff | update VERSION: the go-smtp patch
# (third_party/go-smtp/DKIMD.md); see scripts/third-party-patch.sh.
exec "$(dirname "$0")/third-party-patch.sh" go-smtp "$@"

package dkim

import (
	"crypto/sha256"
)

func newTestHash() hashWriter { return sha256.New() }

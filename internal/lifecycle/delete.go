package lifecycle

import (
	"context"
	"fmt"

	"github.com/dkimd/dkimd/internal/dnscheck"
	"github.com/dkimd/dkimd/internal/store"
)

// ErrSeenInDNS means a pending key's record has been seen in DNS: resolvers
// may cache it and a mail signed elsewhere may name it, so the key is
// revoked (an empty p=), never deleted. It is a store.ErrConflict.
var ErrSeenInDNS = fmt.Errorf("%w: its record was seen in DNS", store.ErrConflict)

// seenInDNS reports whether a check found something at the key's name that
// may be its record: anything but nothing, another key, or no answer.
func seenInDNS(c store.DNSCheck) bool {
	switch dnscheck.Status(c.Status) {
	case dnscheck.StatusNotFound, dnscheck.StatusWrongKey, dnscheck.StatusTemporary:
		return false
	}
	return true
}

// Deletable reports whether a key can be deleted outright (Delete): a
// pending key that never signed and whose record no check in its history
// has seen. It says why not otherwise.
func (s *Service) Deletable(ctx context.Context, k store.Key) (bool, error) {
	if k.State != store.KeyPending || !k.Activated.IsZero() {
		return false, nil
	}
	hist, err := s.History(ctx, k, store.MaxDNSCheckLimit)
	if err != nil {
		return false, err
	}
	for _, c := range hist {
		if seenInDNS(c) {
			return false, nil
		}
	}
	return true, nil
}

// Delete removes a pending key made by mistake: one that never signed and
// whose record was never seen in DNS, neither in its check history nor by
// a check made now (when a checker is configured and DNS answers). Its
// private key goes with it and its selector is free again. Anything else
// is revoked instead: ErrSeenInDNS, or store.ErrConflict for a key that is
// not pending.
func (s *Service) Delete(ctx context.Context, by By, k store.Key) error {
	if k.State != store.KeyPending || !k.Activated.IsZero() {
		return store.Explain(store.ErrConflict, "Key %s is %s: only a pending key that never signed can be deleted; revoke it instead.", k.Selector, k.State)
	}
	ok, err := s.Deletable(ctx, k)
	if err != nil {
		return err
	}
	if !ok {
		return store.Explain(ErrSeenInDNS, "The record of key %s was seen in DNS, so receivers may know it: revoke it instead.", k.Selector)
	}
	if s.o.DNS != nil {
		// A record published since the last check: look once more. No
		// answer leaves the history to decide.
		if c, err := s.o.DNS.CheckKey(ctx, k); err == nil && seenInDNS(c) {
			c.KeyID = k.ID
			if _, err := s.o.Store.AddDNSCheck(ctx, c, s.o.Settings.HistoryCap()); err != nil {
				s.log.Warn("dns_check_not_stored", "key", k.RecordName(), "err", err)
			}
			return store.Explain(ErrSeenInDNS, "The record of key %s was seen in DNS, so receivers may know it: revoke it instead.", k.Selector)
		}
	}
	if err := s.o.Store.DeleteKey(ctx, k.ID); err != nil {
		return err
	}
	if s.o.Signers != nil {
		s.o.Signers.Drop(k.ID)
	}
	return s.audit(ctx, by, "key.delete", k, fmt.Sprintf("pending key deleted, never published (%s %d)", k.Algorithm, k.Bits))
}

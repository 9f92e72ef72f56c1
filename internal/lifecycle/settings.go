package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
)

// Defaults for zero Settings fields.
const (
	// DefaultSignatureLifetime is the x= a signature carries past its t=:
	// the signer's expiration setting.
	DefaultSignatureLifetime = 7 * 24 * time.Hour
	// DefaultQueueLifetime is how long a signed message may wait in a
	// queue before it is delivered or bounced.
	DefaultQueueLifetime = 5 * 24 * time.Hour
	// DefaultMaxAge is the age past which a key is old and should be
	// rotated.
	DefaultMaxAge = 180 * 24 * time.Hour
	// DefaultHistory is how many DNS checks are kept per key.
	DefaultHistory = 100
	// WeakRSABits is the RSA length warned about: the minimum receivers
	// accept (RFC 8301 §3.2), no longer considered strong.
	WeakRSABits = 1024
)

// Settings holds the lifecycle settings. The zero value of each field is the
// default documented beside it.
type Settings struct {
	// SignatureLifetime is how long after signing a signature stays
	// verifiable (its x= minus t=); it must match the signer's setting.
	// Zero means DefaultSignatureLifetime.
	SignatureLifetime time.Duration
	// QueueLifetime is how long a signed message may sit in a queue (ours
	// or a receiver's) before it is verified. Zero means
	// DefaultQueueLifetime.
	QueueLifetime time.Duration
	// MaxAge is the age past which a pending or active key is warned
	// about as old. Zero means DefaultMaxAge.
	MaxAge time.Duration
	// History is how many DNS checks are kept per key; zero means
	// DefaultHistory.
	History int
}

func (p Settings) signatureLifetime() time.Duration {
	if p.SignatureLifetime <= 0 {
		return DefaultSignatureLifetime
	}
	return p.SignatureLifetime
}

func (p Settings) queueLifetime() time.Duration {
	if p.QueueLifetime <= 0 {
		return DefaultQueueLifetime
	}
	return p.QueueLifetime
}

func (p Settings) maxAge() time.Duration {
	if p.MaxAge <= 0 {
		return DefaultMaxAge
	}
	return p.MaxAge
}

// HistoryCap gives History, or DefaultHistory when zero.
func (p Settings) HistoryCap() int {
	if p.History <= 0 {
		return DefaultHistory
	}
	return p.History
}

// SafeToRevoke gives the time from which revoking a retired key breaks no
// signature that could still be checked: the last one was made when the
// key retired, carries x= SignatureLifetime later, and may reach its
// receiver up to QueueLifetime after that. Zero for a key that is not
// retired (an active key still signs; a pending one never signed).
func (p Settings) SafeToRevoke(k store.Key) time.Time {
	if k.State != store.KeyRetired || k.Retired.IsZero() {
		return time.Time{}
	}
	return k.Retired.Add(p.signatureLifetime() + p.queueLifetime())
}

// Warning codes, stable for scripts and the API.
const (
	WarnWeak           = "weak_key"
	WarnOld            = "old_key"
	WarnRecord         = "record_problem"
	WarnReady          = "ready_to_activate"
	WarnSafeToRevoke   = "safe_to_revoke"
	WarnReadyToArchive = "ready_to_archive"
)

// Warning is something an administrator should know or do about a key.
type Warning struct {
	// Code is one of the Warn constants.
	Code string `json:"code"`
	// Message says it in words.
	Message string `json:"message"`
}

// Status is what is known about a key: its state, age, last DNS check, what
// to warn about, and when it may be revoked.
type Status struct {
	Key store.Key `json:"key"`
	// Age is the time since the key was made, in whole seconds for JSON.
	Age Seconds `json:"age"`
	// LastCheck is the newest DNS check, nil if there is none.
	LastCheck *store.DNSCheck `json:"last_check,omitempty"`
	// Alert says the key signs but its record is gone or changed: mail it
	// signs fails verification.
	Alert bool `json:"alert,omitempty"`
	// SafeToRevoke is Settings.SafeToRevoke, for retired keys.
	SafeToRevoke time.Time `json:"safe_to_revoke,omitzero"`
	Warnings     []Warning `json:"warnings,omitempty"`
	// Level and Headline are the one thing to say about the key, the worst
	// first: LevelBad with Alert, LevelWarn for an active key whose record
	// was never checked or whose check DNS did not answer, or a weak or
	// old key, LevelInfo for a step to take.
	Level    Level  `json:"level"`
	Headline string `json:"headline,omitempty"`
}

// Seconds is a duration that is whole seconds in JSON.
type Seconds time.Duration

// MarshalJSON gives the whole seconds.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%d", int64(time.Duration(s)/time.Second)), nil
}

// Days gives the duration in whole days.
func (s Seconds) Days() int { return int(time.Duration(s) / (24 * time.Hour)) }

// Status computes a key's status at now, given its newest DNS check (nil
// if none) and whether its domain activates keys by itself.
func (p Settings) Status(k store.Key, last *store.DNSCheck, autoActivate bool, now time.Time) Status {
	if last != nil && !k.Revoked.IsZero() && last.Time.Before(k.Revoked) {
		// A check made before revocation looked for the key, not for the
		// empty p= the record should now have: it says nothing now.
		last = nil
	}
	st := Status{Key: k, LastCheck: last, Age: Seconds(now.Sub(k.Created)), SafeToRevoke: p.SafeToRevoke(k)}
	live := k.State == store.KeyPending || k.State == store.KeyActive
	if live && k.Algorithm == keys.RSA && k.Bits <= WeakRSABits {
		st.warn(WarnWeak, fmt.Sprintf("RSA %d is weak (RFC 8301 allows it as the minimum): rotate to RSA 2048", k.Bits))
	}
	if live {
		since := k.Created
		if !k.Activated.IsZero() {
			since = k.Activated
		}
		if age := now.Sub(since); age > p.maxAge() {
			st.warn(WarnOld, fmt.Sprintf("in use for %d days (more than %d): rotate it", int(age/(24*time.Hour)), int(p.maxAge()/(24*time.Hour))))
		}
	}
	definite := last != nil && !last.OK && !Temporary(*last)
	switch {
	case k.State == store.KeyActive && definite:
		st.Alert = true
		st.warn(WarnRecord, "the key signs but DNS does not serve its record as it should ("+last.Status+"): "+last.Summary)
	case k.State == store.KeyPending && last != nil && last.OK && !autoActivate:
		st.warn(WarnReady, "its record is published everywhere: start signing with it (dkimd key activate)")
	case k.State == store.KeyRetired && !now.Before(st.SafeToRevoke):
		st.warn(WarnSafeToRevoke, "its last signatures have expired: revoke it (dkimd key revoke) and publish the empty p= record")
	case k.State == store.KeyRevoked && last != nil && last.OK:
		st.warn(WarnReadyToArchive, "DNS serves the revoked record: the key can be archived")
	}
	st.level()
	return st
}

func (s *Status) warn(code, msg string) {
	s.Warnings = append(s.Warnings, Warning{Code: code, Message: msg})
}

// ErrNoSelector means no free default selector was found.
var ErrNoSelector = errors.New("lifecycle: no free selector")

// DefaultSelector gives a date-based selector for a new key made at now,
// "s202611" for November 2026, with "-2", "-3"… added while taken says the
// name is used (selectors are never reused).
func DefaultSelector(ctx context.Context, now time.Time, taken func(ctx context.Context, selector string) (bool, error)) (string, error) {
	base := "s" + now.UTC().Format("200601")
	for i := 1; i <= 100; i++ {
		sel := base
		if i > 1 {
			sel = fmt.Sprintf("%s-%d", base, i)
		}
		used, err := taken(ctx, sel)
		if err != nil {
			return "", err
		}
		if !used {
			return sel, nil
		}
	}
	return "", fmt.Errorf("%w: %s to %s-100 are taken", ErrNoSelector, base, base)
}

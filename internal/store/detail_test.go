package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dkimd/dkimd/internal/store"
)

// detailed is an error of a package that may not import store: it carries
// its sentence by the method alone.
type detailed struct{}

func (detailed) Error() string       { return "other: broke" }
func (detailed) UserMessage() string { return "The other thing broke." }

// TestDetail: the outermost sentence in the chain wins, a class gives its
// generic one, and an error without any gives none (the boundary then says
// something generic, never the error's text).
func TestDetail(t *testing.T) {
	cases := []struct {
		name         string
		err          error
		msg, field   string
		ok           bool
		is           error
		logSubstring string
	}{
		{"class alone", fmt.Errorf("%w: domain x", store.ErrNotFound), "It was not found (or it is not one of yours).", "", true, store.ErrNotFound, "store: not found: domain x"},
		{"problem", store.Explain(store.ErrConflict, "Key %s is busy.", "s1"), "Key s1 is busy.", "", true, store.ErrConflict, "store: conflict: Key s1 is busy."},
		{"problem wrapped", fmt.Errorf("activate: %w", store.Explain(store.ErrConflict, "Key s1 is busy.")), "Key s1 is busy.", "", true, store.ErrConflict, "activate: store: conflict"},
		{"field", store.Invalid("selector", "use letters and digits"), "Use letters and digits.", "selector", true, store.ErrInvalid, "store: invalid selector: use letters and digits"},
		{"field over a problem", &store.FieldError{Field: "name", Err: store.Explain(errors.New("x"), "That name is taken.")}, "That name is taken.", "name", true, store.ErrInvalid, "invalid name"},
		{"other package", fmt.Errorf("wrap: %w", detailed{}), "The other thing broke.", "", true, nil, "wrap: other: broke"},
		{"none", errors.New("disk on fire"), "", "", false, nil, "disk on fire"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, field, ok := store.Detail(c.err)
			if msg != c.msg || field != c.field || ok != c.ok {
				t.Errorf("Detail = %q %q %v, want %q %q %v", msg, field, ok, c.msg, c.field, c.ok)
			}
			if c.is != nil && !errors.Is(c.err, c.is) {
				t.Errorf("not errors.Is %v", c.is)
			}
			if got := c.err.Error(); !strings.Contains(got, c.logSubstring) {
				t.Errorf("Error() = %q, want it to keep %q for the log", got, c.logSubstring)
			}
		})
	}
}

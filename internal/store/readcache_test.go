package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestReadCache(t *testing.T) {
	reads := 0
	read := func(v string, err error) func() (string, error) {
		return func() (string, error) { reads++; return v, err }
	}
	same := func(s string) string { return s }
	c := &ReadCache{}

	// Off: every read goes through.
	for range 2 {
		if v, _ := Cached(c, "k", same, read("a", nil)); v != "a" {
			t.Fatalf("got %q", v)
		}
	}
	if reads != 2 {
		t.Fatalf("%d reads with the cache off, want 2", reads)
	}

	c.SetLive(true)
	reads = 0
	for range 3 {
		if v, _ := Cached(c, "k", same, read("a", nil)); v != "a" {
			t.Fatalf("got %q", v)
		}
	}
	if reads != 1 {
		t.Fatalf("%d reads of a cached key, want 1", reads)
	}

	// Not found is kept; other failures are not.
	notFound := fmt.Errorf("%w: no user", ErrNotFound)
	for range 2 {
		if _, err := Cached(c, "missing", same, read("", notFound)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	}
	broken := errors.New("disk I/O error")
	for range 2 {
		if _, err := Cached(c, "broken", same, read("", broken)); err != broken {
			t.Fatalf("got %v", err)
		}
	}
	if reads != 1+1+2 {
		t.Fatalf("%d reads, want 4 (not found kept, a failure not)", reads)
	}

	// A change drops everything.
	c.Invalidate()
	if v, _ := Cached(c, "k", same, read("b", nil)); v != "b" {
		t.Fatalf("after Invalidate: got %q, want the new value", v)
	}

	// A read that a change overtakes is not kept: it may hold what the
	// change replaced.
	Cached(c, "raced", same, func() (string, error) { c.Invalidate(); return "old", nil })
	if v, _ := Cached(c, "raced", same, read("new", nil)); v != "new" {
		t.Fatalf("a read overtaken by a change was kept: %q", v)
	}

	// Turned off and on again, it starts empty.
	c.SetLive(false)
	c.SetLive(true)
	if v, _ := Cached(c, "k", same, read("c", nil)); v != "c" {
		t.Fatalf("after a restart: got %q", v)
	}

	var off *ReadCache
	if v, _ := Cached(off, "k", same, read("d", nil)); v != "d" || off.Live() {
		t.Fatal("a nil cache must read through")
	}
	off.Invalidate()
}

func TestCheckDue(t *testing.T) {
	a, b := new(int), new(int)
	plain := context.Background()
	for range 2 {
		if !CheckDue(plain, a) {
			t.Fatal("without OneCheck every read must check")
		}
	}
	ctx := OneCheck(plain)
	if !CheckDue(ctx, a) || CheckDue(ctx, a) || CheckDue(ctx, a) {
		t.Fatal("under OneCheck a cache checks once")
	}
	if !CheckDue(ctx, b) {
		t.Fatal("another cache under the same context must check for itself")
	}
	if !CheckDue(OneCheck(plain), a) {
		t.Fatal("a new OneCheck context must check again")
	}
}

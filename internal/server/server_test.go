package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/admin/admintest"
	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/metrics"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
	"github.com/dkimd/dkimd/internal/web"
)

// TestServeLoginThrottleShared: serve's API and panel share one login
// throttle, so failures through one count against the other: after the
// per-name limit of failures through the API, the right password is
// refused on the panel too.
func TestServeLoginThrottleShared(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dkimd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mk, err := keys.NewMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := admintest.New(t, admintest.Options{Store: db, Master: mk}).Admin
	const pw = "a long and right password"
	if _, err := svc.AddAccount(ctx, admin.CLI(), admin.NewAccountRequest{Name: "alice", Role: store.RoleAdmin, Password: pw}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpHandler(svc, metrics.Sources{}, nil, nil, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for i := range web.DefaultLoginLimits().PerPair {
		resp, err := c.Post(srv.URL+"/api/v1/login", "application/json", strings.NewReader(`{"name":"alice","password":"wrong `+fmt.Sprint(i)+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("API failure %d: status %d, want 401", i+1, resp.StatusCode)
		}
	}
	page, err := c.Get(srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on the login page:\n%s", body)
	}
	resp, err := c.PostForm(srv.URL+"/login", url.Values{"csrf": {string(m[1])}, "name": {"alice"}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(got), "Too many failed logins") {
		t.Errorf("panel login after %d API failures: status %d, want 429 Too many failed logins", web.DefaultLoginLimits().PerPair, resp.StatusCode)
	}
}

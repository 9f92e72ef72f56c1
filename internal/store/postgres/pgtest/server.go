package pgtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrUnavailable means PostgreSQL is not installed here (or cannot be run).
var ErrUnavailable = errors.New("pgtest: PostgreSQL unavailable")

// Options configure a Server. The zero value suits functional tests.
type Options struct {
	// Durable keeps fsync and synchronous_commit on, as in production: for
	// durability tests and benchmarks. The zero value turns fsync off,
	// which is safe for a server that is thrown away and much faster.
	Durable bool
	// Settings are extra "-c name=value" server settings.
	Settings []string
}

// Server is a throwaway PostgreSQL server, started on first use.
type Server struct {
	opts Options

	mu      sync.Mutex
	err     error // why it could not start, for every later test
	bin     string
	dir     string
	port    int
	running bool
	started bool
	dbs     int
}

// New returns a server that starts when first needed.
func New(opts Options) *Server { return &Server{opts: opts} }

// Database starts the server if needed, creates a new empty database and
// returns its URL (postgres://postgres@/NAME?host=DIR&port=PORT). The
// database is dropped when the test ends. Skips the test when PostgreSQL is
// missing, fails it under DKIMD_REQUIRE_PEERS=1.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	if err := s.startLocked(); err != nil {
		s.mu.Unlock()
		if errors.Is(err, ErrUnavailable) {
			unavailable(t, err)
		}
		t.Fatalf("pgtest: %v", err)
	}
	s.dbs++
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbs)
	s.mu.Unlock()
	if err := s.exec(t.Context(), "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		running := s.running
		s.mu.Unlock()
		if !running {
			return // stopped or closed by the test: nothing to drop from
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.URL(name)
}

// URL gives the URL of database name on this server.
func (s *Server) URL(name string) string {
	q := url.Values{"host": {s.dir}, "port": {strconv.Itoa(s.port)}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + name + "?" + q.Encode()
}

// exec runs one statement in the postgres database.
func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop stops the server, if running, leaving its data for Start. It is
// also how a test takes the database away from dkimd under load.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	s.running = false
	return s.pgctl("-m", "fast", "stop")
}

// Start starts a server stopped with Stop again, with the same data, port
// and socket folder.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

// Close stops the server and removes its folder. For TestMain.
func (s *Server) Close() error {
	err := s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir != "" {
		err = errors.Join(err, os.RemoveAll(s.dir))
		s.dir = ""
	}
	s.err = errors.New("pgtest: server closed")
	return err
}

func (s *Server) startLocked() error {
	if s.running {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	if s.dir == "" {
		if err := s.initLocked(); err != nil {
			s.err = err
			return err
		}
	}
	args := []string{"-l", filepath.Join(s.dir, "log"), "-w", "-t", "60"}
	o := fmt.Sprintf("-k %s -c listen_addresses='' -p %d", s.dir, s.port)
	if !s.opts.Durable {
		o += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	for _, set := range s.opts.Settings {
		o += " -c " + set
	}
	args = append(args, "-o", o, "start")
	if err := s.pgctl(args...); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		err = fmt.Errorf("start: %w\n%s", err, tail(string(log), 2000))
		if !s.started {
			s.err = err // a first start that fails will not work later
		}
		return err
	}
	if !s.started {
		s.watchdog()
	}
	s.running, s.started = true, true
	return nil
}

// watchdog starts a shell that stops the server and removes its folder once
// this process is gone, however it ended (a panic in a test skips TestMain's
// Close): a throwaway server must not outlive its tests.
func (s *Server) watchdog() {
	stop := fmt.Sprintf("%s -D %s -m immediate stop", filepath.Join(s.bin, "pg_ctl"), filepath.Join(s.dir, "data"))
	if os.Geteuid() == 0 {
		stop = "runuser -u postgres -- " + stop
	}
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s",
		os.Getpid(), stop, s.dir)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }() // usually outlives this process
	}
}

// initLocked finds the binaries and runs initdb in a new folder.
func (s *Server) initLocked() error {
	s.bin = findBin()
	if s.bin == "" {
		return fmt.Errorf("%w: no initdb under /usr/lib/postgresql/*/bin: apt-get install postgresql", ErrUnavailable)
	}
	dir, err := os.MkdirTemp("", "dkimd-pgtest-")
	if err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("%w: running as root and there is no postgres user to run the server as", ErrUnavailable)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return err
		}
	}
	s.dir = dir
	s.port = 20000 + rand.IntN(40000) // names the socket file only: no TCP
	out, err := s.run(filepath.Join(s.bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions")
	if err != nil {
		os.RemoveAll(dir)
		s.dir = ""
		return fmt.Errorf("initdb: %w\n%s", err, tail(out, 2000))
	}
	return nil
}

func (s *Server) pgctl(args ...string) error {
	args = append([]string{"-D", filepath.Join(s.dir, "data")}, args...)
	out, err := s.run(filepath.Join(s.bin, "pg_ctl"), args...)
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", strings.Join(args, " "), err, tail(out, 1000))
	}
	return nil
}

// run runs a PostgreSQL program, as the postgres user when we are root.
func (s *Server) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// findBin gives the newest /usr/lib/postgresql/N/bin holding initdb.
func findBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return va - vb
	})
	if len(dirs) == 0 {
		return ""
	}
	return filepath.Dir(dirs[len(dirs)-1])
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// RequireEnv names the environment variable that turns a missing
// PostgreSQL from a skipped test into a failed one, as for every peer
// (peertest.RequireEnv). CI sets it to 1.
const RequireEnv = "DKIMD_REQUIRE_PEERS"

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%v (%s=1 requires every peer)", err, RequireEnv)
	}
	t.Skip(err.Error())
}

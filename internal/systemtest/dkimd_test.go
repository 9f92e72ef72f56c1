package systemtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/store/postgres/pgtest"
)

// dkimdBin is the binary TestMain builds.
var dkimdBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dkimd-systemtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	dkimdBin = filepath.Join(dir, "dkimd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", dkimdBin, "github.com/dkimd/dkimd/cmd/dkimd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "systemtest: building dkimd: %v\n", err)
		return 1
	}
	defer pgServer.Close()
	return m.Run()
}

// pgServer is the PostgreSQL server the cluster tests share, started by
// the first that needs it.
var pgServer = pgtest.New(pgtest.Options{})

// slow skips a test that takes tens of seconds under -short.
func slow(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the dkimd binary for tens of seconds; skipped with -short")
	}
}

// dataDir is a dkimd data directory set up with the admin commands.
type dataDir struct {
	t   *testing.T
	dir string
	// record is the TXT value of the active key, s1._domainkey.example.com.
	record string
}

// admin runs a dkimd admin command on the data directory and returns its
// standard output; a non-zero exit fails the test.
func (d *dataDir) admin(stdin string, args ...string) string {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dkimdBin, args...)
	cmd.Env = append(os.Environ(), "DKIMD_DATA="+d.dir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		d.t.Fatalf("dkimd %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// newDataDir makes a data directory with example.com, an active RSA-2048
// key s1 and, for each address, an IP-authenticated user of example.com.
// Each client has a user of its own because dkimd counts its per-user rate
// limit (1000 messages an hour) in memory.
func newDataDir(t *testing.T, ips ...string) *dataDir {
	t.Helper()
	d := &dataDir{t: t, dir: filepath.Join(t.TempDir(), "data")}
	d.admin("", "domain", "add", "example.com")
	d.admin("", "key", "generate", "--domain", "example.com", "--selector", "s1", "--bits", "2048")
	d.admin("", "key", "activate", "--domain", "example.com", "--selector", "s1", "--force")
	d.record = strings.TrimSpace(d.admin("", "key", "record", "--domain", "example.com", "--selector", "s1", "--format", "value"))
	for i, ip := range ips {
		d.admin("", "user", "add", "--domain", "example.com", "--name", fmt.Sprintf("srv%d", i), "--ip", ip)
	}
	return d
}

// server is one run of "dkimd serve".
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // from Wait, once exited is closed

	// Relay and HTTP are the addresses dkimd reported.
	Relay, HTTP string
}

var servingRE = regexp.MustCompile(`msg=serving http=(\S+) submission=\S* submissions=\S* relay=(\S+)`)

// serve starts "dkimd serve" on the data directory, delivering to
// smarthost, in its own process group, and waits until it listens. The
// process is killed when the test ends if it still runs.
func (d *dataDir) serve(smarthost string) *server {
	t := d.t
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(dkimdBin, "serve", "--data", d.dir,
		"--listen-http", "127.0.0.1:0", "--listen-submission", "127.0.0.1:0",
		"--listen-submissions", "127.0.0.1:0", "--listen-relay", "127.0.0.1:0",
		"--hostname", "dkimd.test", "--smarthost", smarthost, "--smarthost-tls", "none")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, logPath: logf.Name(), exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := servingRE.FindStringSubmatch(s.log()); m != nil {
			s.HTTP, s.Relay = m[1], m[2]
			return s
		}
		select {
		case <-s.exited:
			t.Fatalf("dkimd serve exited at start (%v):\n%s", s.err, s.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dkimd serve did not start within 30s:\n%s", s.log())
		}
	}
}

// log returns what the process wrote so far.
func (s *server) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// logTail returns the last n lines of the log, for failure messages.
func (s *server) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(s.log(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// kill sends SIGKILL to the process group and waits for the exit.
func (s *server) kill() {
	s.t.Helper()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Fatal("dkimd did not die of SIGKILL within 10s")
	}
}

// stop sends SIGTERM and waits up to 30 s for a clean exit.
func (s *server) stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.err != nil {
			s.t.Errorf("dkimd serve after SIGTERM: %v\n%s", s.err, s.logTail(20))
		}
	case <-time.After(30 * time.Second):
		s.t.Fatalf("dkimd serve did not stop within 30s of SIGTERM:\n%s", s.logTail(30))
	}
}

// metric reads one sample without labels from /metrics.
func (s *server) metric(name string) (float64, error) {
	ctx, cancel := context.WithTimeout(s.t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HTTP+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// waitMetric waits until the metric satisfies ok, up to timeout, and
// returns its last value and whether ok held.
func (s *server) waitMetric(name string, timeout time.Duration, ok func(float64) bool) (float64, bool) {
	var v float64
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if v, err = s.metric(name); err == nil && ok(v) {
			return v, true
		}
		if time.Now().After(deadline) {
			return v, false
		}
	}
}

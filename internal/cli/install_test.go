package cli

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/logtest"
)

// TestServeHelpDefaultsOnce: "serve -h" says each default once, in the
// form a user types it ("180d", "1h"), never "(default 180d) (default
// 4320h0m0s)".
func TestServeHelpDefaultsOnce(t *testing.T) {
	code, out, _ := run(t, "", "serve", "-h")
	if code != 0 {
		t.Fatalf("serve -h: exit %d", code)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Count(line, "default") > 1 {
			t.Errorf("a default said twice: %q", line)
		}
		if strings.Contains(line, "0m0s") || strings.Contains(line, "h0m") {
			t.Errorf("a duration not as a user types it: %q", line)
		}
	}
	for _, want := range []string{"(default 180d)", "(default 1h)", "(default 30s)", "(default 127.0.0.1:8080)", "(default $DKIMD_DATA or ./dkimd-data)"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve -h lacks %q:\n%s", want, out)
		}
	}
}

// TestServeHTTPListenerBeforeFirstAccount: when the panel's address is
// taken, serve stops before it makes the first account, so it prints no
// one-time password that nobody could use.
func TestServeHTTPListenerBeforeFirstAccount(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var stderr logtest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Main(ctx, []string{"dkimd", "serve", "--data", t.TempDir() + "/data", "--listen-http", busy.Addr().String(),
		"--listen-submission", "127.0.0.1:0", "--listen-submissions", "127.0.0.1:0", "--listen-relay", "127.0.0.1:0"},
		&Env{Stdin: strings.NewReader(""), Stdout: &stderr, Stderr: &stderr, Getenv: func(string) string { return "" }})
	if code == 0 {
		t.Fatalf("serve started on a taken address:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "password") {
		t.Errorf("serve printed a password although it could not listen:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "--listen-http") {
		t.Errorf("the error does not name the flag to change:\n%s", stderr.String())
	}
}

// TestServeAsNormalUser runs the built binary as a user without privilege
// (nobody, through setpriv, when the test runs as root), with the default
// mail ports: it must exit with one sentence saying what to do (the
// systemd unit, or high ports) and print no password. Then the README's
// run command for a normal user, with high ports, starts.
//
// dkimd does not move to other ports on its own: mail clients are
// configured for a port, and a server that silently listens elsewhere
// fails them with no word in its configuration; a start that refuses,
// naming the flag and the port to give, is fixed in one step.
func TestServeAsNormalUser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; not in -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux privileges semantics")
	}
	var prefix []string
	if os.Getuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("running as root and setpriv (util-linux) is missing: cannot run serve as a normal user")
		}
		prefix = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"}
	}
	// A directory the unprivileged user can enter, with the binary and a
	// data directory it owns.
	base, err := os.MkdirTemp("", "dkimd-normal-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "dkimd")
	build := exec.Command("go", "build", "-o", bin, "github.com/dkimd/dkimd/cmd/dkimd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := filepath.Join(base, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		if err := os.Chown(work, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	serve := func(ctx context.Context, args ...string) *exec.Cmd {
		argv := append(append(append([]string{}, prefix...), bin, "serve"), args...)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = work
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + work}
		return cmd
	}

	t.Run("default ports", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// The panel's default 8080 may be taken on a shared machine; the
		// mail listeners keep their defaults.
		out, err := serve(ctx, "--listen-http", "127.0.0.1:0").CombinedOutput()
		if err == nil {
			t.Fatalf("serve started on ports below 1024 without privilege:\n%s", out)
		}
		s := string(out)
		if strings.Contains(s, "password") {
			t.Errorf("serve printed a one-time password and then stopped:\n%s", s)
		}
		// The error is the last line, one sentence holding the advice.
		lines := strings.Split(strings.TrimSpace(s), "\n")
		last := lines[len(lines)-1]
		for _, want := range []string{"dkimd serve: cannot listen on :", "CAP_NET_BIND_SERVICE", "contrib/systemd/dkimd.service", "--listen-submission 127.0.0.1:1587"} {
			if !strings.Contains(last, want) {
				t.Errorf("the advice lacks %q:\n%s", want, s)
			}
		}
	})

	t.Run("README command", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// The README's command for a normal user, with the panel on a free
		// port and the relay on one the test picks.
		cmd := serve(ctx, "--listen-http", "127.0.0.1:0", "--listen-submission", "127.0.0.1:0", "--listen-submissions", "127.0.0.1:0", "--listen-relay", "127.0.0.1:0")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cmd.Process.Kill()
		sc := bufio.NewScanner(stderr)
		var seen []string
		for sc.Scan() {
			seen = append(seen, sc.Text())
			if strings.Contains(sc.Text(), "msg=serving") {
				return
			}
		}
		t.Fatalf("serve as a normal user with high ports did not start:\n%s", strings.Join(seen, "\n"))
	})
}

// TestSystemdUnit checks the shipped unit: its own user and state
// directory, the one capability, the hardening, restart, a graceful stop,
// and that systemd-analyze verify finds nothing to say about it.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../contrib/systemd/dkimd.service")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(unit), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"User=dkimd", "StateDirectory=dkimd", "Environment=DKIMD_DATA=/var/lib/dkimd",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=on-failure",
		"KillSignal=SIGTERM", "ExecStart=/usr/local/bin/dkimd serve",
	} {
		if !lines[want] {
			t.Errorf("the unit lacks %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is missing (Debian package systemd): the unit is not verified")
	}
	// verify wants ExecStart's binary to exist: point it at one that does.
	dir := t.TempDir()
	fixed := strings.ReplaceAll(string(unit), "/usr/local/bin/dkimd", "/bin/true")
	path := filepath.Join(dir, "dkimd.service")
	if err := os.WriteFile(path, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// verify exits 0 on unknown keys and bad values, only warning: any
	// word about the unit is a failure.
	var said []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "dkimd.service") {
			said = append(said, l)
		}
	}
	if err != nil || len(said) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

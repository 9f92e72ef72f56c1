package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/logtest"
)

// TestServeFirstStart runs "dkimd serve" on a fresh data directory the way
// the README says, logs in with the printed one-time password, uses the API,
// and stops it cleanly.
func TestServeFirstStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir() + "/data"
	var stderr logtest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dkimd", "serve", "--data", dir, "--listen-http", addr,
			"--listen-submission", "127.0.0.1:0", "--listen-submissions", "127.0.0.1:0", "--listen-relay", "127.0.0.1:0", "--hostname", "mail.test"}, &Env{Stdin: strings.NewReader(""), Stdout: &stderr, Stderr: &stderr, Getenv: func(string) string { return "" }})
	}()
	var password string
	pwRE := regexp.MustCompile(`log in as "admin" with the password (\S+)`)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if m := pwRE.FindStringSubmatch(stderr.String()); m != nil && strings.Contains(stderr.String(), "msg=serving") {
			password = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	base := "http://" + addr
	post := func(path, body, csrf string) *http.Response {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("/api/v1/login", `{"name":"admin","password":"`+password+`"}`, "")
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if resp.StatusCode != 200 || login.CSRF == "" {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if resp := post("/api/v1/domains", `{"name":"example.com"}`, login.CSRF); resp.StatusCode != http.StatusCreated {
		t.Errorf("add domain: %d", resp.StatusCode)
	}
	if resp := post("/api/v1/domains", `{"name":"example.org"}`, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("add domain without CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, err := c.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz: %v %v", resp, err)
	}
	if resp, err := c.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz: %v %v", resp, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	// The one-time password is printed once, and no token is logged.
	if strings.Count(stderr.String(), "First start") != 1 {
		t.Errorf("first-start banner count: %s", stderr.String())
	}
	// A second start on the same data finds the admin: no new password.
	var again logtest.Buffer
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		done <- Main(ctx2, []string{"dkimd", "serve", "--data", dir, "--listen-http", "127.0.0.1:0",
			"--listen-submission", "", "--listen-submissions", "", "--listen-relay", ""},
			&Env{Stdin: strings.NewReader(""), Stdout: &again, Stderr: &again, Getenv: func(string) string { return "" }})
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(again.String(), "msg=serving"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("second start did not serve:\n%s", again.String())
		}
	}
	cancel2()
	if code := <-done; code != 0 || strings.Contains(again.String(), "First start") || strings.Contains(again.String(), password) {
		t.Errorf("second start: exit %d, printed a password again:\n%s", code, again.String())
	}
	if strings.Contains(stderr.String(), "dkimd_") {
		t.Error("a token reached the log")
	}
}

// TestServeConfigFile: serve takes its settings from --config, and a flag
// on the command line wins over the file.
func TestServeConfigFile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	conf := dir + "/dkimd.conf"
	if err := os.WriteFile(conf, []byte(`# dkimd settings
listen-http = 127.0.0.1:1
listen-submission = ""
listen-submissions = ""
listen-relay = 127.0.0.1:0
listen-milter = inet:127.0.0.1:0
milter-on-error = accept

hostname = "conf.test"
log-format = json
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr logtest.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dkimd", "serve", "--data", dir + "/data", "--config", conf, "--listen-http", addr},
			&Env{Stdin: strings.NewReader(""), Stdout: &stderr, Stderr: &stderr, Getenv: func(string) string { return "" }})
	}()
	var serving struct {
		HTTP, Submission, Submissions, Relay, Milter string
	}
	for deadline := time.Now().Add(20 * time.Second); serving.Relay == ""; time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(line, `"msg":"serving"`) {
				if err := json.Unmarshal([]byte(line), &serving); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start with JSON logs:\n%s", stderr.String())
		}
	}
	if serving.HTTP != addr || serving.Submission != "" || serving.Submissions != "" {
		t.Errorf("serving %+v: want http %s (the command line's) and both submission ports off", serving, addr)
	}
	if serving.Milter == "" {
		t.Error("no milter listener from the file's listen-milter")
	} else if mc, err := net.Dial("tcp", serving.Milter); err != nil {
		t.Errorf("milter listener: %v", err)
	} else {
		mc.Close()
	}
	c, err := net.Dial("tcp", serving.Relay)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	greeting, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.HasPrefix(greeting, "220 conf.test ") {
		t.Errorf("relay greeting %q, want the hostname from the file", greeting)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d:\n%s", code, stderr.String())
	}
}

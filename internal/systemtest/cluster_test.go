package systemtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/store/postgres/pgtest"
)

// cluster is a set of dkimd nodes on one PostgreSQL database, each with a
// data directory of its own (TLS files only) and the same master key.
type cluster struct {
	t     *testing.T
	url   string
	key   string // the master key, as $DKIMD_MASTER_KEY holds it
	nodes []*node
}

// node is one "dkimd serve" of a cluster.
type node struct {
	*server
	name       string
	Submission string
	dead       atomic.Bool
}

func newCluster(t *testing.T, pg *pgtest.Server) *cluster {
	t.Helper()
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, url: pg.Database(t), key: base64.StdEncoding.EncodeToString(raw[:])}
}

func (c *cluster) env(dir string) []string {
	return append(os.Environ(), "DKIMD_DATA="+dir, "DKIMD_DATABASE="+c.url, "DKIMD_MASTER_KEY="+c.key)
}

// admin runs an admin command against the cluster's database, as an
// operator does from any node.
func (c *cluster) admin(stdin string, args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dkimdBin, args...)
	cmd.Env = c.env(filepath.Join(c.t.TempDir(), "admin"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("dkimd %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

var submissionRE = regexp.MustCompile(`msg=serving http=\S+ submission=(\S+)`)

// start starts one more node delivering to smarthost.
func (c *cluster) start(smarthost string, extra ...string) *node {
	t := c.t
	t.Helper()
	name := fmt.Sprintf("node%d", len(c.nodes)+1)
	logf, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"serve",
		"--listen-http", "127.0.0.1:0", "--listen-submission", "127.0.0.1:0",
		"--listen-submissions", "127.0.0.1:0", "--listen-relay", "127.0.0.1:0", "--allow-insecure-auth",
		"--hostname", name + ".dkimd.test", "--smarthost", smarthost, "--smarthost-tls", "none"}, extra...)
	cmd := exec.Command(dkimdBin, args...)
	cmd.Env = c.env(filepath.Join(t.TempDir(), name))
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
	n := &node{server: s, name: name}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		log := s.log()
		if m := servingRE.FindStringSubmatch(log); m != nil {
			s.HTTP, s.Relay = m[1], m[2]
			n.Submission = submissionRE.FindStringSubmatch(log)[1]
			break
		}
		select {
		case <-s.exited:
			t.Fatalf("%s exited at start (%v):\n%s", name, s.err, s.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start within 30s:\n%s", name, s.log())
		}
	}
	c.nodes = append(c.nodes, n)
	return n
}

// pick gives the address (relay or submission) of a live node, turning
// through them so that a client's connections spread over the cluster, as
// behind DNS round-robin.
func (c *cluster) pick(turn *atomic.Int64, submission bool) string {
	for range len(c.nodes) {
		n := c.nodes[int(turn.Add(1))%len(c.nodes)]
		if n.dead.Load() {
			continue
		}
		if submission {
			return n.Submission
		}
		return n.Relay
	}
	return ""
}

// leader gives the node whose log says it leads the DNS monitor last, or
// nil.
func (c *cluster) leader(skip *node) *node {
	for _, n := range c.nodes {
		if n != skip && !n.dead.Load() && strings.Contains(n.log(), "msg=leader_elected job=dns-monitor") {
			return n
		}
	}
	return nil
}

// authClient sends messages over the submission port with AUTH PLAIN,
// reconnecting to whatever node pick gives whenever the connection breaks.
type authClient struct {
	name, user, password string
	addr                 func() string
	ledger               *ledger
}

func (c *authClient) run(ctx context.Context) {
	seq := 0
	for ctx.Err() == nil {
		conn, err := net.DialTimeout("tcp", c.addr(), 5*time.Second)
		if err != nil {
			sleep(ctx, 20*time.Millisecond)
			continue
		}
		sc := smtp.NewClient(conn)
		sc.CommandTimeout, sc.SubmissionTimeout = 30*time.Second, 30*time.Second
		if err := sc.Hello("client.test"); err != nil {
			sc.Close()
			sleep(ctx, 20*time.Millisecond)
			continue
		}
		if err := sc.Auth(sasl.NewPlainClient("", c.user, c.password)); err != nil {
			sc.Close()
			sleep(ctx, 50*time.Millisecond)
			continue
		}
		for ctx.Err() == nil {
			id := fmt.Sprintf("<%s.%d@systemtest.example.com>", c.name, seq)
			msg, body := newMessage(id, bodySizes[seq%len(bodySizes)])
			seq++
			s := sent{sum: sha256.Sum256(body)}
			s.outcome, s.reply = send(sc, msg)
			c.ledger.record(id, s)
			if s.outcome == notSent || s.outcome == unanswered {
				break
			}
			if s.outcome == refused {
				if err := sc.Reset(); err != nil {
					break
				}
				sleep(ctx, 50*time.Millisecond)
			}
		}
		sc.Close()
	}
}

// httpJSON does one API request and decodes the answer into out (if not
// nil); it gives the status and the response.
func httpJSON(t *testing.T, method, url string, hdr map[string]string, cookies []*http.Cookie, body any, out any) (int, *http.Response) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(b, out)
	}
	return resp.StatusCode, resp
}

// TestClusterThreeNodes runs three "dkimd serve" nodes on one PostgreSQL,
// as a hosting provider would behind DNS round-robin, and checks what
// makes them one service:
//
//   - mail submitted to all three, by IP-authenticated servers and by AUTH
//     users, while the node that leads the DNS monitor is killed with
//     SIGKILL mid-run: the others deliver every message answered 250
//     (the dead node's leased messages once its lease ends), complete and
//     signed; duplicates are counted and reported;
//   - another node takes the DNS monitor over;
//   - a domain admin logged in on one node is logged in on the others, and
//     logged out on all by a logout on one;
//   - a key generated and activated through one node's API signs on
//     another at once (within a second).
func TestClusterThreeNodes(t *testing.T) {
	slow(t)
	c := newCluster(t, pgServer)
	const password = "cluster test password"
	c.admin("", "domain", "add", "example.com", "--init")
	c.admin("", "key", "generate", "--domain", "example.com", "--selector", "s1", "--bits", "2048")
	c.admin("", "key", "activate", "--domain", "example.com", "--selector", "s1", "--force")
	record := strings.TrimSpace(c.admin("", "key", "record", "--domain", "example.com", "--selector", "s1", "--format", "value"))
	ips := []string{"127.0.0.20", "127.0.0.21", "127.0.0.22", "127.0.0.23"}
	for i, ip := range ips {
		c.admin("", "user", "add", "--domain", "example.com", "--name", fmt.Sprintf("srv%d", i), "--ip", ip)
	}
	c.admin(password+"\n", "user", "add", "--domain", "example.com", "--name", "alice", "--password-stdin")
	c.admin(password+"\n", "account", "add", "dadmin", "--role", "domain", "--domain", "example.com", "--password-stdin")
	c.admin("", "account", "add", "root", "--role", "admin")
	token := strings.TrimSpace(c.admin("", "account", "token", "root", "--label", "system test"))

	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	for range 3 {
		c.start(sink.Addr, "--queue-lease", "3s", "--messages-per-hour", "-1", "--messages-per-day", "-1")
	}
	var first *node
	for deadline := time.Now().Add(20 * time.Second); first == nil; time.Sleep(50 * time.Millisecond) {
		if first = c.leader(nil); first == nil && time.Now().After(deadline) {
			t.Fatal("no node leads the DNS monitor")
		}
	}
	for _, n := range c.nodes {
		if n != first && strings.Contains(n.log(), "leader_elected") {
			t.Fatalf("%s and %s both lead the DNS monitor", first.name, n.name)
		}
	}

	led := newLedger()
	ctx, stopClients := context.WithCancel(t.Context())
	defer stopClients()
	var wg sync.WaitGroup
	for i, ip := range ips {
		var turn atomic.Int64
		turn.Store(int64(i))
		cl := &client{name: fmt.Sprintf("ip%d", i), source: ip, relay: func() string { return c.pick(&turn, false) }, ledger: led}
		wg.Go(func() { cl.run(ctx) })
	}
	for i := range 2 {
		var turn atomic.Int64
		turn.Store(int64(i))
		cl := &authClient{name: fmt.Sprintf("auth%d", i), user: "alice", password: password,
			addr: func() string { return c.pick(&turn, true) }, ledger: led}
		wg.Go(func() { cl.run(ctx) })
	}
	time.Sleep(3 * time.Second)
	before := led.count(accepted)
	first.dead.Store(true)
	first.kill()
	t.Logf("SIGKILL to %s (the DNS monitor's leader) after %d messages accepted", first.name, before)
	time.Sleep(3 * time.Second)
	stopClients()
	wg.Wait()
	if led.count(accepted) == before {
		t.Errorf("nothing accepted after the kill")
	}
	led.mu.Lock()
	t.Logf("clients: %d accepted, %d unanswered, %d refused, %d not sent", led.n[accepted], led.n[unanswered], led.n[refused], led.n[notSent])
	led.mu.Unlock()

	var second *node
	for deadline := time.Now().Add(30 * time.Second); second == nil; time.Sleep(100 * time.Millisecond) {
		if second = c.leader(first); second == nil && time.Now().After(deadline) {
			t.Errorf("no node took the DNS monitor over from %s", first.name)
			break
		}
	}
	if second != nil {
		t.Logf("%s took the DNS monitor over", second.name)
	}

	// Every message answered 250 is delivered, by the nodes still up.
	want := led.snapshot()
	var miss []string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got := map[string]bool{}
		for _, m := range deliveries(t, sink) {
			got[m.id] = true
		}
		miss = miss[:0]
		for id, s := range want {
			if s.outcome == accepted && !got[id] {
				miss = append(miss, id)
			}
		}
		if len(miss) == 0 || time.Now().After(deadline) {
			break
		}
	}
	sort.Strings(miss)
	live := c.nodes[0]
	if live == first {
		live = c.nodes[1]
	}
	if q, ok := live.waitMetric("dkimd_queue_messages", 30*time.Second, func(v float64) bool { return v == 0 }); !ok {
		t.Errorf("the cluster's queue did not drain: %v messages left", q)
	}
	if len(miss) > 0 {
		t.Errorf("%d messages answered 250 were never delivered, e.g. %v\n%s", len(miss), miss[:min(5, len(miss))], live.logTail(30))
	}
	msgs := deliveries(t, sink)
	seen := map[string]int{}
	var unique []delivery
	for _, m := range msgs {
		seen[m.id]++
		s, ok := want[m.id]
		switch {
		case !ok:
			t.Errorf("delivered %s, which no client sent", m.id)
			continue
		case s.outcome == refused || s.outcome == notSent:
			t.Errorf("delivered %s, which was %s (%s)", m.id, s.outcome, s.reply)
		}
		if m.sum != s.sum {
			t.Errorf("delivered %s with another body", m.id)
		}
		if seen[m.id] == 1 {
			unique = append(unique, m)
		}
	}
	dups := len(msgs) - len(unique)
	t.Logf("next hop: %d deliveries, %d distinct messages, %d duplicates (a kill between the next hop's 250 and the commit)",
		len(msgs), len(unique), dups)
	checkSignatures(t, unique, record)

	alive := []*node{}
	for _, n := range c.nodes {
		if !n.dead.Load() {
			alive = append(alive, n)
		}
	}
	a, b := alive[0], alive[1]

	// A login on one node is a login on the others.
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	code, resp := httpJSON(t, "POST", "http://"+a.HTTP+"/api/v1/login", nil, nil, map[string]string{"name": "dadmin", "password": password}, &login)
	if code != http.StatusOK {
		t.Fatalf("login on %s: %d", a.name, code)
	}
	cookies := resp.Cookies()
	var who struct {
		Account struct {
			Name string `json:"name"`
		} `json:"account"`
	}
	if code, _ := httpJSON(t, "GET", "http://"+b.HTTP+"/api/v1/whoami", nil, cookies, nil, &who); code != http.StatusOK || who.Account.Name != "dadmin" {
		t.Errorf("whoami on %s with the session from %s: %d %q", b.name, a.name, code, who.Account.Name)
	}
	if code, _ := httpJSON(t, "POST", "http://"+b.HTTP+"/api/v1/logout", map[string]string{"X-CSRF-Token": login.CSRF}, cookies, nil, nil); code >= 300 {
		t.Errorf("logout on %s: %d", b.name, code)
	}
	if code, _ := httpJSON(t, "GET", "http://"+a.HTTP+"/api/v1/whoami", nil, cookies, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("whoami on %s after logging out on %s: %d, want 401", a.name, b.name, code)
	}

	// A key made and activated through b's API signs on a at once.
	bearer := map[string]string{"Authorization": "Bearer " + token}
	if code, _ := httpJSON(t, "POST", "http://"+b.HTTP+"/api/v1/domains/example.com/keys", bearer, nil,
		map[string]any{"selector": "s2", "algorithm": "ed25519"}, nil); code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("generate s2 on %s: %d", b.name, code)
	}
	if code, _ := httpJSON(t, "POST", "http://"+b.HTTP+"/api/v1/domains/example.com/keys/s2/state", bearer, nil,
		map[string]any{"state": "active", "force": true}, nil); code != http.StatusOK {
		t.Fatalf("activate s2 on %s: %d", b.name, code)
	}
	activated := time.Now()
	n0 := len(sink.Delivered())
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ips[0])}}
	conn, err := d.Dial("tcp", a.Relay)
	if err != nil {
		t.Fatal(err)
	}
	sc := smtp.NewClient(conn)
	if err := sc.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	msg, _ := newMessage("<after-s2@systemtest.example.com>", 500)
	if o, reply := send(sc, msg); o != accepted {
		t.Fatalf("message after s2 on %s: %s %s", a.name, o, reply)
	}
	sent := time.Since(activated)
	sc.Quit()
	got := sink.Wait(n0+1, 30*time.Second)
	if len(got) <= n0 {
		t.Fatal("the message after s2 was not delivered")
	}
	last := got[len(got)-1].Data
	if !regexp.MustCompile(`(?i)DKIM-Signature:[^\r]*(\r\n[ \t][^\r]*)*\bs=s2;`).Match(last) {
		t.Errorf("a message sent %v after s2 was activated on %s, through %s, is not signed with s2:\n%.1200s", sent.Round(time.Millisecond), b.name, a.name, last)
	} else if sent > time.Second {
		t.Logf("note: the message went %v after the activation", sent)
	}
}

// TestClusterRateLimit: a user's hourly limit holds for the cluster, not
// per node: its messages spread over three nodes are refused past the
// limit, as on one node.
func TestClusterRateLimit(t *testing.T) {
	slow(t)
	c := newCluster(t, pgServer)
	c.admin("", "domain", "add", "example.com", "--init")
	c.admin("", "user", "add", "--domain", "example.com", "--name", "srv", "--ip", "127.0.0.30")
	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	const limit = 6
	for range 3 {
		c.start(sink.Addr, "--messages-per-hour", fmt.Sprint(limit))
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.30")}}
	acceptedN, refusedN := 0, 0
	for i := range 3 * limit {
		n := c.nodes[i%3]
		conn, err := d.Dial("tcp", n.Relay)
		if err != nil {
			t.Fatal(err)
		}
		sc := smtp.NewClient(conn)
		if err := sc.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
		msg, _ := newMessage(fmt.Sprintf("<rate.%d@systemtest.example.com>", i), 200)
		switch o, reply := send(sc, msg); o {
		case accepted:
			acceptedN++
		case refused:
			if !strings.HasPrefix(reply, "451") {
				t.Errorf("message %d on %s refused with %s, want 451", i, n.name, reply)
			}
			refusedN++
		default:
			t.Fatalf("message %d on %s: %s %s", i, n.name, o, reply)
		}
		sc.Close()
	}
	if acceptedN != limit {
		t.Errorf("%d messages accepted over three nodes, %d refused; want %d accepted: the limit is the cluster's", acceptedN, refusedN, limit)
	}
}

// TestClusterDatabaseRestart restarts PostgreSQL under load: the nodes
// answer 4xx while it is down (never 250 for what was not committed),
// take mail again once it is back without being restarted themselves, and
// every message answered 250 is delivered.
func TestClusterDatabaseRestart(t *testing.T) {
	slow(t)
	own := pgtest.New(pgtest.Options{Durable: true})
	t.Cleanup(func() { own.Close() })
	c := newCluster(t, own)
	c.admin("", "domain", "add", "example.com", "--init")
	c.admin("", "key", "generate", "--domain", "example.com", "--selector", "s1", "--algorithm", "ed25519")
	c.admin("", "key", "activate", "--domain", "example.com", "--selector", "s1", "--force")
	ips := []string{"127.0.0.40", "127.0.0.41", "127.0.0.42"}
	for i, ip := range ips {
		c.admin("", "user", "add", "--domain", "example.com", "--name", fmt.Sprintf("srv%d", i), "--ip", ip)
	}
	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	for range 2 {
		c.start(sink.Addr, "--queue-lease", "3s", "--messages-per-hour", "-1", "--messages-per-day", "-1")
	}
	led := newLedger()
	ctx, stopClients := context.WithCancel(t.Context())
	defer stopClients()
	var wg sync.WaitGroup
	for i, ip := range ips {
		var turn atomic.Int64
		turn.Store(int64(i))
		cl := &client{name: fmt.Sprintf("db%d", i), source: ip, relay: func() string { return c.pick(&turn, false) }, ledger: led}
		wg.Go(func() { cl.run(ctx) })
	}
	time.Sleep(2 * time.Second)
	if err := own.Stop(); err != nil {
		t.Fatal(err)
	}
	acceptedBefore := led.count(accepted)
	time.Sleep(3 * time.Second)
	refusedDown := led.count(refused)
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	upAt := led.count(accepted)
	time.Sleep(4 * time.Second)
	stopClients()
	wg.Wait()
	if refusedDown == 0 {
		t.Error("no message refused while the database was down")
	}
	if led.count(accepted) == upAt {
		t.Errorf("no message accepted after the database came back\n%s", c.nodes[0].logTail(20))
	}
	for _, n := range c.nodes {
		select {
		case <-n.exited:
			t.Errorf("%s exited: %v\n%s", n.name, n.err, n.logTail(20))
		default:
		}
	}
	want := led.snapshot()
	t.Logf("%d messages answered 250 before the stop, %d in all; %d refused (4xx), %d while the database was down",
		acceptedBefore, led.count(accepted), led.count(refused), refusedDown)
	var miss []string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got := map[string]bool{}
		for _, m := range deliveries(t, sink) {
			got[m.id] = true
		}
		miss = miss[:0]
		for id, s := range want {
			if s.outcome == accepted && !got[id] {
				miss = append(miss, id)
			}
		}
		if len(miss) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(miss) > 0 {
		sort.Strings(miss)
		t.Errorf("%d messages answered 250 were never delivered, e.g. %v\n%s", len(miss), miss[:min(5, len(miss))], c.nodes[0].logTail(30))
	}
}

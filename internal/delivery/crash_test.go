package delivery

import (
	"github.com/dkimd/dkimd/internal/queue"

	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
)

const (
	crashModeEnv = "DKIMD_QUEUE_CRASH_CHILD"
	crashDirEnv  = "DKIMD_QUEUE_CRASH_DIR"
	crashSinkEnv = "DKIMD_QUEUE_CRASH_SINK"
	crashConc    = 4
)

// crashBody is the message for token: its size varies from about 1 KiB to
// 64 KiB, and its last line repeats the token, so a cut body shows.
func crashBody(token string) string {
	n, _ := strconv.Atoi(token[strings.LastIndexByte(token, '-')+1:])
	var b strings.Builder
	fmt.Fprintf(&b, "From: a@sender.test\r\nSubject: crash\r\nX-Token: %s\r\n\r\n", token)
	for i := range 16 + (n*37)%1000 {
		fmt.Fprintf(&b, "%06d the quick brown fox jumps over the lazy dog %s\r\n", i, token)
	}
	fmt.Fprintf(&b, "END %s\r\n", token)
	return b.String()
}

// TestCrashChild is the child process of TestKill9: it enqueues or
// delivers until it is killed. It does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	mode := os.Getenv(crashModeEnv)
	if mode == "" {
		t.Skip("child process of TestKill9 only")
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sp, err := queue.OpenSpool(os.Getenv(crashDirEnv), queue.SpoolOptions{Log: quiet})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	switch mode {
	case "enqueue":
		for i := 0; ; i++ {
			token := fmt.Sprintf("%d-%d", os.Getpid(), i)
			id, err := sp.Enqueue(context.Background(), queue.Envelope{From: "a@sender.test", To: []string{"b@rcpt.test", "c@rcpt.test"}},
				strings.NewReader(crashBody(token)))
			if err != nil {
				fmt.Println("ERR", err)
				os.Exit(2)
			}
			// Printed only once Enqueue returned: an acknowledgement.
			fmt.Printf("ACK %s %s\n", id, token)
		}
	case "deliver":
		d := NewDeliverer(sp, Options{SmartHost: os.Getenv(crashSinkEnv), HeloName: "dkimd.test", Log: quiet,
			Concurrency: crashConc, PollInterval: 10 * time.Millisecond})
		_ = d.Run(context.Background())
	}
	os.Exit(0)
}

// TestKill9 kills processes that enqueue, then processes that deliver, with
// SIGKILL at random moments, and then drains the spool: every acknowledged
// message is delivered, to each recipient, exactly once or as a counted
// duplicate (only a kill between the remote 250 and the state write makes
// one), and no partial message is ever delivered.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	acked := map[string]string{} // id -> token
	run := func(mode string, wait time.Duration) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashModeEnv+"="+mode, crashDirEnv+"="+dir, crashSinkEnv+"="+sink.Addr)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 3 && f[0] == "ACK" {
					acked[f[1]] = f[2]
				} else if len(f) > 0 && f[0] == "ERR" {
					t.Errorf("child: %s", sc.Text())
				}
			}
		})
		time.Sleep(wait)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		wg.Wait()
		_ = cmd.Wait() // "signal: killed", as intended
	}
	for range 4 {
		run("enqueue", time.Duration(150+rand.IntN(350))*time.Millisecond)
	}
	if len(acked) < 20 {
		t.Fatalf("only %d messages acknowledged", len(acked))
	}
	const deliverKills = 3
	for range deliverKills {
		run("deliver", time.Duration(100+rand.IntN(300))*time.Millisecond)
	}

	byChildren := len(sink.Delivered())
	// Drain what is left in this process.
	m := new(queue.Metrics)
	sp, err := queue.OpenSpool(dir, queue.SpoolOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDeliverer(sp, Options{SmartHost: sink.Addr, HeloName: "dkimd.test", Metrics: m,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := d.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { must(t, sp.Close()) })
	if l, _ := sp.List(t.Context()); len(l) != 0 {
		t.Fatalf("%d messages left after draining", len(l))
	}
	if m.Quarantined.Load() != 0 || m.Deferred.Load() != 0 || m.Bounced.Load() != 0 {
		t.Fatalf("drain counters: quarantined %d, deferred %d, bounced %d", m.Quarantined.Load(), m.Deferred.Load(), m.Bounced.Load())
	}

	// Copies per token and recipient; every copy must be whole.
	copies := map[string]int{}
	for _, r := range sink.Delivered() {
		body := string(r.Data)
		i := strings.Index(body, "X-Token: ")
		if i < 0 {
			t.Fatalf("delivered message without token: %.200q", body)
		}
		token := body[i+9 : i+9+strings.Index(body[i+9:], "\r\n")]
		if body != crashBody(token) {
			t.Fatalf("partial or damaged message delivered for %s (%d bytes)", token, len(body))
		}
		for _, to := range r.To {
			copies[token+" "+to]++
		}
	}
	dups := 0
	for _, n := range copies {
		dups += n - 1
	}
	for id, token := range acked {
		for _, to := range []string{"b@rcpt.test", "c@rcpt.test"} {
			if copies[token+" "+to] == 0 {
				t.Errorf("acknowledged message %s (%s) never delivered to %s", id, token, to)
			}
		}
	}
	unacked := len(copies)/2 - len(acked)
	t.Logf("acknowledged %d, delivered %d (%d by killed children; %d not acknowledged: killed between rename and print), duplicates %d after %d delivery kills",
		len(acked), len(copies)/2, byChildren, unacked, dups, deliverKills)
	// Each kill can catch at most one transaction per worker between the
	// remote 250 and the state write.
	if dups > deliverKills*crashConc*2 {
		t.Fatalf("%d duplicate deliveries: more than the kill windows allow", dups)
	}
}

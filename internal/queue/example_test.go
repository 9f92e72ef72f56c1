package queue_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/queue"
)

// The SMTP side stores each signed message with Enqueue and answers 250
// only once it returns; a deliverer (package delivery) claims it with a
// lease, records how each recipient's attempt ended, and completes it.
func Example() {
	dir, err := os.MkdirTemp("", "spool")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	spool, err := queue.OpenSpool(dir, queue.SpoolOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer spool.Close()

	ctx := context.Background()
	_, err = spool.Enqueue(ctx, queue.Envelope{
		From: "alice@example.com",
		To:   []string{"bob@example.net", "carol@example.org"},
	}, strings.NewReader("Subject: hi\r\n\r\nHello.\r\n"))
	if err != nil {
		log.Fatal(err) // answer 451 4.3.0
	}

	claims, err := spool.Claim(ctx, "node1", time.Hour, 10)
	if err != nil {
		log.Fatal(err)
	}
	c := &claims[0]
	c.Recipients[0].Status = queue.Delivered // 250 after the final dot
	c.Recipients[1].Status = queue.Deferred  // 451: try again in ten minutes
	c.Recipients[1].Next = time.Now().Add(10 * time.Minute)
	if err := spool.Complete(ctx, c); err != nil {
		log.Fatal(err)
	}

	l, _ := spool.List(ctx)
	fmt.Println("queued", len(l), "open recipients", l[0].Open)
	again, _ := spool.Claim(ctx, "node2", time.Hour, 10)
	fmt.Println("due now", len(again))
	// Output:
	// queued 1 open recipients 1
	// due now 0
}

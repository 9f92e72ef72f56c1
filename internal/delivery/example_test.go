package delivery_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/delivery"
	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/queue"
)

// The SMTP side stores each signed message with Enqueue and answers 250
// only once it returns; a Deliverer sends it on.
func Example() {
	sink, err := deliverytest.StartSink(deliverytest.SinkOptions{}) // the smart host
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()
	dir, err := os.MkdirTemp("", "spool")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	quiet := slog.New(slog.DiscardHandler)
	metrics := new(queue.Metrics)
	spool, err := queue.OpenSpool(dir, queue.SpoolOptions{Log: quiet, Metrics: metrics})
	if err != nil {
		log.Fatal(err)
	}
	defer spool.Close()

	ctx := context.Background()
	_, err = spool.Enqueue(ctx, queue.Envelope{
		From:     "alice@example.com",
		To:       []string{"bob@example.net"},
		User:     "alice",
		Decision: "signed d=example.com s=sel1",
	}, strings.NewReader("Subject: hi\r\n\r\nHello.\r\n"))
	if err != nil {
		log.Fatal(err) // answer 451 4.3.0
	}

	d := delivery.NewDeliverer(spool, delivery.Options{
		SmartHost:    sink.Addr,
		SmartHostTLS: delivery.TLSOpportunistic,
		HeloName:     "dkimd.example.com",
		Log:          quiet,
		Metrics:      metrics,
	})
	if err := d.RunOnce(ctx); err != nil { // a server runs d.Run(ctx) instead
		log.Fatal(err)
	}
	sink.Wait(1, time.Second)
	st, _ := spool.Stats(ctx)
	fmt.Println("accepted", st.Accepted, "delivered", st.Delivered, "queued", st.Messages)
	// Output: accepted 1 delivered 1 queued 0
}

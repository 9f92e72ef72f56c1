package peertest_test

import (
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/dkimd/dkimd/internal/delivery/deliverytest"
	"github.com/dkimd/dkimd/internal/peertest"
)

// A private Postfix comes up in a temp folder and relays to the next hop
// given; SASL logins work on its submission listener.
func TestPrivatePostfix(t *testing.T) {
	peertest.RequirePostfix(t, true)
	sink := deliverytest.NewSink(t, deliverytest.SinkOptions{})
	pf, err := peertest.StartPostfix(peertest.PostfixOptions{RelayHost: sink.Addr, SASLUsers: map[string]string{"alice": "pw-alice"}})
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Stop()
	msg := "From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n"
	if err := smtp.SendMail(pf.SMTP, nil, "a@example.com", []string{"b@example.net"}, []byte(msg)); err != nil {
		t.Fatalf("send on the SMTP listener: %v\n%s", err, pf.Log())
	}
	c, err := gosmtp.Dial(pf.Submission)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "wrong")); err == nil {
		t.Fatal("AUTH with a wrong password succeeded")
	}
	c.Close()
	if c, err = gosmtp.Dial(pf.Submission); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice", "pw-alice")); err != nil {
		t.Fatalf("AUTH: %v\n%s", err, pf.Log())
	}
	for deadline := time.Now().Add(20 * time.Second); len(sink.Delivered()) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing delivered\n%s", pf.Log())
		}
	}
	if got := string(sink.Delivered()[0].Data); !strings.Contains(got, "Subject: hi") {
		t.Fatalf("delivered %q", got)
	}
}

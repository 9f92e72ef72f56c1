package dkim_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/dkim"
)

const message = "From: Alice <alice@example.com>\r\n" +
	"To: bob@example.net\r\n" +
	"Subject: Lunch\r\n" +
	"Date: Sun, 1 Mar 2026 12:00:00 +0000\r\n" +
	"Message-ID: <lunch@example.com>\r\n" +
	"\r\n" +
	"Noon at the usual place?\r\n"

// exampleKey is the Ed25519 key committed in testdata/keys (see its
// README); a server gets its crypto.Signer from its key store or an HSM.
func exampleKey() ed25519.PrivateKey {
	b, err := os.ReadFile("testdata/keys/ed25519.seed")
	if err != nil {
		log.Fatal(err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		log.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// Sign returns one DKIM-Signature field per key; put them on top of the
// message, which is otherwise sent unchanged (sigs[0] + message). From is
// signed once more than it occurs, so a second From cannot be added.
func ExampleSign() {
	key := exampleKey()
	sigs, err := dkim.Sign(strings.NewReader(message), &dkim.SignOptions{
		Keys:       []dkim.SignKey{{Domain: "example.com", Selector: "ed1", Signer: key}},
		Expiration: 72 * time.Hour,
		Now:        func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		log.Fatal(err)
	}
	name, value, _ := strings.Cut(sigs[0], ":")
	sig, err := dkim.ParseSignature(value)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(name)
	fmt.Println("a:", sig.Algorithm, "c:", sig.HeaderCanon+"/"+sig.BodyCanon)
	fmt.Println("d:", sig.Domain, "s:", sig.Selector)
	fmt.Println("h:", strings.Join(sig.Headers, ":"))
	fmt.Println("t:", sig.Timestamp.UTC(), "x:", sig.Expiration.UTC())
	// Output:
	// DKIM-Signature
	// a: ed25519-sha256 c: relaxed/relaxed
	// d: example.com s: ed1
	// h: from:from:date:date:subject:subject:reply-to:sender:to:to:cc:bcc:message-id:message-id:in-reply-to:references:content-type:mime-version:content-transfer-encoding
	// t: 2026-03-01 12:00:00 +0000 UTC x: 2026-03-04 12:00:00 +0000 UTC
}

// Verify checks every DKIM-Signature field of a message against the key
// records its Resolver finds; here a function stands in for DNS.
func ExampleVerify() {
	key := exampleKey()
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	sigs, err := dkim.Sign(strings.NewReader(message), &dkim.SignOptions{
		Keys: []dkim.SignKey{{Domain: "example.com", Selector: "ed1", Signer: key}},
		Now:  now,
	})
	if err != nil {
		log.Fatal(err)
	}
	record, err := dkim.RecordValue(key.Public())
	if err != nil {
		log.Fatal(err)
	}
	resolver := dkim.ResolverFunc(func(ctx context.Context, name string) ([]string, error) {
		if name != dkim.RecordName("ed1", "example.com") {
			return nil, fmt.Errorf("%w: %s", dkim.ErrKeyNotFound, name)
		}
		return []string{record}, nil
	})

	for _, msg := range []string{
		sigs[0] + message,
		sigs[0] + strings.Replace(message, "Noon", "Nine", 1), // the body changed on the way
	} {
		results, err := dkim.Verify(context.Background(), strings.NewReader(msg), &dkim.VerifyOptions{Resolver: resolver, Now: now})
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range results {
			fmt.Printf("%s d=%s: %s\n", r.Status, r.Domain(), r.Reason())
		}
	}
	// Output:
	// pass d=example.com: good signature
	// fail d=example.com: body hash did not verify
}

package sqlite_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dkimd/dkimd/internal/keys"
	"github.com/dkimd/dkimd/internal/store"
	"github.com/dkimd/dkimd/internal/store/sqlite"
)

// Generate a key, seal it, store it with its secret in one transaction,
// and open it again for signing.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "dkimd-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	mk, _, err := keys.LoadOrCreateMasterKey(filepath.Join(dir, "master.key"))
	if err != nil {
		log.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "dkimd.db"), sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.AddDomain(ctx, store.Domain{Name: "Example.COM"}); err != nil {
		log.Fatal(err)
	}

	signer, err := keys.Generate(nil, keys.Spec{Algorithm: keys.Ed25519})
	if err != nil {
		log.Fatal(err)
	}
	sealed, err := mk.SealSigner(signer, store.KeyAssociatedData("example.com", "s2026"))
	if err != nil {
		log.Fatal(err)
	}
	k, err := db.CreateKey(ctx, store.NewKey{Domain: "example.com", Selector: "s2026", Algorithm: keys.Ed25519,
		PublicKey: signer.Public().(ed25519.PublicKey), Sealed: sealed})
	if err != nil {
		log.Fatal(err)
	}
	if k, err = db.SetKeyState(ctx, k.ID, store.KeyActive); err != nil {
		log.Fatal(err)
	}

	blob, err := db.SealedKey(ctx, k.ID)
	if err != nil {
		log.Fatal(err)
	}
	again, err := mk.OpenSigner(blob, k.AssociatedData())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(k.RecordName(), k.State, k.Spec(), again.(ed25519.PrivateKey).Equal(signer))
	// Output: s2026._domainkey.example.com active ed25519 true
}

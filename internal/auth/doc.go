// Package auth hashes and checks the secrets people log in with: SMTP AUTH
// and panel passwords (argon2id, stored as PHC strings) and API tokens
// (random, stored only as a SHA-256 hash, shown once).
//
// It holds no state and knows nothing of users or accounts; the store keeps
// the hashes and the relay and web packages check them. It must not import
// store, policy, web, relay or cli.
package auth

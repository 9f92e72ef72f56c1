// Package queuetest is the conformance suite of queue.DeliveryQueue: the
// promises a deliverer relies on, run against any implementation. The disk
// spool passes it (queue's spool_conformance_test.go); a database queue
// runs the same suite.
//
// It checks that Enqueue is durable (the message survives a restart), that
// Claim gives due messages only, earliest first, each to one owner at a
// time, that a lease that runs out returns the message to others and that
// a claim whose lease ran out can change nothing (fencing), and the
// outcomes: Record, Defer, Bounce, Complete, Release and Quarantine.
//
// It is for tests only. It must import nothing of dkimd but the queue
// package.
package queuetest

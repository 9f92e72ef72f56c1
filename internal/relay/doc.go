// Package relay is the receiving half of dkimd's SMTP service: it accepts
// mail from outgoing users (submission with STARTTLS, implicit TLS, and a
// relay port for servers authorised by address), signs it by the signing
// rule of the policy package, and hands it to the durable queue. It answers
// 250 only once the queue said the message is on stable storage.
//
// It is never an open relay: no MAIL or RCPT is accepted without a user
// authenticated by SMTP AUTH (after TLS) or authorised by source address,
// and address tricks that ask a server to relay further (percent hack, bang
// paths, quoted local parts holding @, IP literals) are refused. DATA ends
// only at CRLF.CRLF, and a message holding a bare CR or LF is refused, so
// nothing that could end a message early in another MTA passes through.
//
// A message is held in a message buffer (buffer.go) while it is received
// and signed: in memory up to Options.BufferMemoryBytes, in a temporary file
// in Options.TempDir beyond; it is handed to the Queue as a Transaction,
// with its envelope and signing decision, and the buffer is dropped. The
// self-signed certificate (cert.go) is written with datadir.WriteFileAtomic.
//
// Every limit is explicit in Options with a documented default. Errors meet
// one mapper (reply.go) that turns them into SMTP replies: 4xx for anything
// temporary or unknown, never an error's text to the peer; details are
// logged once.
//
// It must not import web, milter, cli or a store backend; it reaches the
// store, the key source and the queue only through the small interfaces
// declared here.
package relay

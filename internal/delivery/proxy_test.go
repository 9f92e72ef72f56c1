package delivery

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
)

// smtpProxy sits on 127.0.0.1 between the deliverer and a sink, in
// plaintext, and records per connection the commands the client sends
// (the verbs, and "." for the end of each message's data), so tests can
// check what goes over the wire. It can also end idle sessions as a server
// does.
type smtpProxy struct {
	Addr string

	t        testing.TB
	upstream string
	l        net.Listener
	wg       sync.WaitGroup

	mu    sync.Mutex
	conns []*proxyConn
}

type proxyConn struct {
	client, server net.Conn
	open           bool
	inData         bool // the server said 354: the client sends data
	cmds           []string
}

// newSMTPProxy starts a proxy to upstream, stopped when the test ends.
func newSMTPProxy(t testing.TB, upstream string) *smtpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &smtpProxy{Addr: l.Addr().String(), t: t, upstream: upstream, l: l}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		_ = l.Close()
		p.Drop("")
		p.wg.Wait()
	})
	return p
}

func (p *smtpProxy) serve() {
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.t.Errorf("proxy: %v", err)
			_ = client.Close()
			continue
		}
		pc := &proxyConn{client: client, server: server, open: true}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Go(func() { p.fromClient(pc) })
		p.wg.Go(func() { p.fromServer(pc) })
	}
}

// fromClient forwards what the client sends, a line at a time, and
// records the commands.
func (p *smtpProxy) fromClient(pc *proxyConn) {
	defer p.close(pc)
	r := bufio.NewReader(pc.client)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			p.mu.Lock()
			switch {
			case pc.inData && string(line) == ".\r\n":
				pc.inData = false
				pc.cmds = append(pc.cmds, ".")
			case !pc.inData:
				verb, _, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
				pc.cmds = append(pc.cmds, strings.ToUpper(verb))
			}
			p.mu.Unlock()
			if _, err := pc.server.Write(line); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// fromServer forwards the server's replies, noting when data begins: the
// client sends it only after the 354 went through here.
func (p *smtpProxy) fromServer(pc *proxyConn) {
	defer p.close(pc)
	r := bufio.NewReader(pc.server)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if bytes.HasPrefix(line, []byte("354")) {
				p.mu.Lock()
				pc.inData = true
				p.mu.Unlock()
			}
			if _, err := pc.client.Write(line); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *smtpProxy) close(pc *proxyConn) {
	p.mu.Lock()
	pc.open = false
	p.mu.Unlock()
	_ = pc.client.Close()
	_ = pc.server.Close()
}

// Drop ends every open session: it sends reply (if any) to the client, as
// a server timing out an idle client does ("421 4.4.2 ..."), and closes
// both sides.
func (p *smtpProxy) Drop(reply string) {
	p.mu.Lock()
	var open []*proxyConn
	for _, pc := range p.conns {
		if pc.open {
			open = append(open, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range open {
		if reply != "" {
			_, _ = pc.client.Write([]byte(reply))
		}
		p.close(pc)
	}
}

// Conns counts the connections accepted.
func (p *smtpProxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Open counts the connections open now.
func (p *smtpProxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pc := range p.conns {
		if pc.open {
			n++
		}
	}
	return n
}

// Commands returns the commands sent on each connection so far, in order.
func (p *smtpProxy) Commands() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]string, len(p.conns))
	for i, pc := range p.conns {
		out[i] = append([]string(nil), pc.cmds...)
	}
	return out
}

// viaProxy points e's deliverer at a new proxy in front of its sink.
func (e *env) viaProxy() *smtpProxy {
	e.t.Helper()
	p := newSMTPProxy(e.t, e.sink.Addr)
	opts := e.d.opts
	opts.SmartHost = p.Addr
	e.d = NewDeliverer(e.sp, opts)
	return p
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dkimd/dkimd/internal/admin"
	"github.com/dkimd/dkimd/internal/datadir"
	"github.com/dkimd/dkimd/internal/queue"
	"github.com/dkimd/dkimd/internal/server"
	"github.com/dkimd/dkimd/internal/store/postgres"
	"github.com/dkimd/dkimd/internal/web"
)

// The queue belongs to the running "dkimd serve" (the spool takes a lock),
// so the queue commands ask it over a UNIX socket in the data directory,
// which only the data directory's owner can reach. When no serve runs,
// they open the spool themselves. With --database the queue is the shared
// one in PostgreSQL, which they open directly.

func runQueue(ctx context.Context, e *Env, args []string) error {
	return subcommand(ctx, e, "queue", args, map[string]func(context.Context, *Env, []string) error{
		"list": queueCmd("list", 0), "show": queueCmd("show", 1), "retry": queueCmd("retry", 1), "remove": queueCmd("remove", 1),
	})
}

func queueCmd(verb string, nargs int) func(context.Context, *Env, []string) error {
	return func(ctx context.Context, e *Env, args []string) error {
		fs := newFlags("queue "+verb, e)
		df := addDataFlags(fs, e)
		pos, err := parseFlags(fs, e, args)
		if err != nil {
			return err
		}
		if len(pos) != nargs {
			return usagef("usage: dkimd queue %s%s", verb, strings.Repeat(" ID", nargs))
		}
		id := ""
		if nargs == 1 {
			id = pos[0]
		}
		var out any
		c := &controlClient{sock: datadir.New(*df.dir).ControlSocket()}
		if *df.database != "" {
			// The shared queue is in the database: any node's command
			// sees and acts on the whole of it, serve running or not.
			out, err = queueShared(ctx, e, df, verb, id)
		} else if c.up() {
			out, err = c.do(ctx, verb, id)
		} else {
			out, err = queueLocal(ctx, e, df, verb, id)
		}
		if err != nil {
			return err
		}
		return printQueue(e, verb, id, out, *df.asJSON)
	}
}

// queueLocal runs a queue command on the spool directly, when no serve
// holds it.
func queueLocal(ctx context.Context, e *Env, df dataFlags, verb, id string) (any, error) {
	// The data directory first: one it refuses gets no spool either.
	d, err := openData(ctx, e, df, nil)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	spool, err := queue.OpenSpool(d.dir.Spool(), queue.SpoolOptions{})
	if errors.Is(err, queue.ErrLocked) {
		return nil, fmt.Errorf("dkimd serve holds the queue but does not answer on %s", d.dir.ControlSocket())
	}
	if err != nil {
		return nil, err
	}
	defer spool.Close()
	a, _, err := d.services(server.Wiring{Queue: spool})
	if err != nil {
		return nil, err
	}
	return queueOp(ctx, a, verb, id)
}

// queueShared runs a queue command on the queue in PostgreSQL.
func queueShared(ctx context.Context, e *Env, df dataFlags, verb, id string) (any, error) {
	d, err := openData(ctx, e, df, nil)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	q := d.pg.Queue(postgres.QueueOptions{})
	defer q.Close()
	a, _, err := d.services(server.Wiring{Queue: q})
	if err != nil {
		return nil, err
	}
	return queueOp(ctx, a, verb, id)
}

// queueOp does one queue command through admin, as the local operator.
func queueOp(ctx context.Context, a *admin.Service, verb, id string) (any, error) {
	switch verb {
	case "list":
		return a.ListQueue(ctx, admin.CLI())
	case "show":
		return a.GetQueued(ctx, admin.CLI(), id)
	case "retry":
		return nil, a.RetryQueued(ctx, admin.CLI(), id)
	case "remove":
		return nil, a.RemoveQueued(ctx, admin.CLI(), id)
	}
	return nil, usagef("unknown queue command %q", verb)
}

func printQueue(e *Env, verb, id string, out any, asJSON bool) error {
	if asJSON && out != nil {
		return writeJSON(e.Stdout, out)
	}
	switch v := out.(type) {
	case []queue.Summary:
		tw := newTable(e.Stdout, "ID", "QUEUED", "FROM", "SIZE", "OPEN", "NEXT TRY")
		for _, m := range v {
			fmt.Fprintf(tw, "%s\t%s\t<%s>\t%d\t%d/%d\t%s\n", m.ID, day(m.Queued), m.From, m.Size, m.Open, m.Recipients, orDash(day(m.Next)))
		}
		return tw.Flush()
	case queue.Message:
		fmt.Fprintf(e.Stdout, "Message %s, queued %s, %d bytes\nFrom:     <%s>\nUser:     %s\nClient:   %s\nSigning:  %s\n\n",
			v.ID, v.Queued.UTC().Format(time.RFC3339), v.Size, v.Envelope.From, orDash(v.Envelope.User), orDash(v.Envelope.ClientAddr), orDash(v.Envelope.Decision))
		tw := newTable(e.Stdout, "RECIPIENT", "STATUS", "ATTEMPTS", "NEXT TRY", "LAST REPLY")
		for _, r := range v.Recipients {
			fmt.Fprintf(tw, "<%s>\t%s\t%d\t%s\t%s\n", r.Addr, r.Status, r.Attempts, day(r.Next), orDash(r.Reply))
		}
		return tw.Flush()
	}
	past := map[string]string{"retry": "will be retried now", "remove": "removed"}[verb]
	_, err := fmt.Fprintf(e.Stdout, "message %s %s\n", id, past)
	return err
}

// controlClient asks a running serve over its control socket.
type controlClient struct{ sock string }

func (c *controlClient) client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.sock)
		},
	}}
}

// up reports whether a serve answers on the socket.
func (c *controlClient) up() bool {
	conn, err := net.DialTimeout("unix", c.sock, 2*time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func (c *controlClient) do(ctx context.Context, verb, id string) (any, error) {
	msg := web.ControlQueuePath + "/" + url.PathEscape(id)
	route := map[string][2]string{
		"list": {"GET", web.ControlQueuePath}, "show": {"GET", msg},
		"retry": {"POST", msg + "/retry"}, "remove": {"DELETE", msg},
	}[verb]
	req, err := http.NewRequestWithContext(ctx, route[0], "http://dkimd"+route[1], nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, controlErrorOf(resp.StatusCode, body)
	}
	switch verb {
	case "list":
		var v []queue.Summary
		return v, json.Unmarshal(body, &v)
	case "show":
		var v queue.Message
		return v, json.Unmarshal(body, &v)
	}
	return nil, nil
}

// controlError is an error answer of the control socket: the JSON API's
// error body, {"error":{"code":…,"message":…}}. Its message is a sentence
// for people (UserMessage, which exitCode prints); its code is the API's
// stable error class.
type controlError struct {
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func (e *controlError) Error() string {
	return fmt.Sprintf("control socket: %d %s: %s", e.Status, e.Code, e.Message)
}

// UserMessage gives the sentence for people (see store.Detail).
func (e *controlError) UserMessage() string { return e.Message }

// UserField gives the field at fault, or "".
func (e *controlError) UserField() string { return e.Field }

// controlErrorOf reads an error answer; one that is not the API's JSON
// (a proxy, a serve of another version) still gives an error for people.
func controlErrorOf(status int, body []byte) error {
	var b struct {
		Error *controlError `json:"error"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Error == nil || b.Error.Code == "" || b.Error.Message == "" {
		return &controlError{Status: status, Code: "internal",
			Message: fmt.Sprintf("dkimd serve answered %d %s on the control socket, without an error the command understands.", status, http.StatusText(status))}
	}
	b.Error.Status = status
	return b.Error
}

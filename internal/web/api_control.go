package web

import (
	"net/http"
	"strings"
)

// ControlQueuePath is where NewControl serves the queue, as the JSON API
// does: GET for the list, GET, DELETE and POST .../retry for one message.
const ControlQueuePath = APIPrefix + "/queue"

// NewControl gives the JSON API's queue routes for serve's control socket,
// which "dkimd queue" asks while serve holds the spool: the same handlers,
// the same JSON and the same error mapper as NewAPI, so the socket and the
// API answer alike. Every request acts as admin.CLI() and sends no
// credentials: the socket's file mode (0600) lets only the owner of the
// data directory connect, who can read every key there anyway. Mount it on
// such a socket only, never on a network listener. Options.Log gets one
// line per request; the login options are not used.
func NewControl(o Options) http.Handler {
	o = o.WithDefaults()
	a := &api{admin: o.Admin, log: o.Log, local: true}
	var rts []route
	for _, rt := range routes() {
		if rt.access == authed && (rt.path == ControlQueuePath || strings.HasPrefix(rt.path, ControlQueuePath+"/")) {
			rts = append(rts, rt)
		}
	}
	return a.mux(rts)
}

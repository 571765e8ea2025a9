package newsdesk

import (
	"context"
	"net/http"

	"fieldtip/audit"
)

// What publication.go needs of the desk's connection to the server, in
// one place, over the desk's Session.

// write logs an event (Session.Write, which brings the replayed state up
// to the checkpoint acknowledging it, so that the state and the opened
// events include it).
func (d *Desk) write(ctx context.Context, body *audit.EventBody) (int64, error) {
	return d.s.Write(ctx, body)
}

// call runs f over the editor's login (Session.Call).
func (d *Desk) call(ctx context.Context, f func(*Remote) error) error { return d.s.Call(ctx, f) }

// origin is the server's origin, for URLs.
func (d *Desk) origin() string { return d.s.url.Origin }

// httpClient is the client of requests without a login: the session's.
func (d *Desk) httpClient() *http.Client { return d.s.hc }

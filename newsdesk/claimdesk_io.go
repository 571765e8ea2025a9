package newsdesk

import (
	"context"
	"fmt"
	"net/http"

	"fieldtip/audit"
)

// What publication.go needs of the desk's connection to the server, in
// one place: writing an event and replaying the log up to it, a call over
// the editor's login, the server's origin and HTTP client. (On the
// Session these are Session.Write, Session.Call and the session's URL and
// client.)

// state returns the replayed state.
func (d *Desk) state() *audit.State { return d.ed.State }

// write logs an event and replays the log up to it, so that the state
// and the opened events include it.
func (d *Desk) write(ctx context.Context, body *audit.EventBody) (int64, error) {
	i, err := d.w.Write(ctx, body)
	if err != nil {
		return 0, err
	}
	if err := d.refresh(ctx); err != nil {
		return i, fmt.Errorf("logged as event %d, but the sync after it: %w", i, err)
	}
	return i, nil
}

// call runs f over the editor's login.
func (d *Desk) call(ctx context.Context, f func(*Remote) error) error { return f(d.w.Remote()) }

// origin is the server's origin, for URLs.
func (d *Desk) origin() string { return d.w.Remote().url.Origin }

// httpClient is the client of requests without a login.
func (d *Desk) httpClient() *http.Client { return d.w.Remote().http }

package browser

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestBrowser: a page served on loopback renders, its script's value and
// its console message are read, and the request for an image on another
// host (another loopback address: nothing leaves the machine) is recorded
// as outside, while the page's own requests are not.
func TestBrowser(t *testing.T) {
	// The "other host": a listener on 127.0.0.2, so the request stays on
	// loopback but is not the test server's.
	other, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	otherSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })}
	go otherSrv.Serve(other)
	t.Cleanup(func() { otherSrv.Close() })

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>t</title><h1 id="h">Hello, kit</h1>
<img src="/local.png" alt=""><img src="http://%s/far.png" alt="">
<script>console.log("from the page"); window.answer = 42;</script>`, other.Addr())
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()

	b := Start(t, Options{Hosts: []string{host}, CheckOutside: true})
	if err := b.Navigate(srv.URL + "/"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Text("#h"); err != nil || got != "Hello, kit" {
		t.Errorf("Text(#h) = %q, %v", got, err)
	}
	if got, err := Eval[int](b, "window.answer"); err != nil || got != 42 {
		t.Errorf("Eval(window.answer) = %d, %v", got, err)
	}
	var urls []string
	for _, r := range b.Requests() {
		urls = append(urls, r.URL)
	}
	for _, want := range []string{srv.URL + "/", srv.URL + "/local.png", "http://" + other.Addr().String() + "/far.png"} {
		if !slices.Contains(urls, want) {
			t.Errorf("requests %v lack %s", urls, want)
		}
	}
	out := b.Outside()
	if len(out) != 1 || out[0].URL != "http://"+other.Addr().String()+"/far.png" || out[0].Type != "Image" {
		t.Errorf("Outside() = %+v, want the one image on the other host", out)
	}
	if c := b.Console(); !slices.ContainsFunc(c, func(s string) bool { return s == "log: [\"from the page\"]" }) {
		t.Errorf("Console() = %q, want the page's log", c)
	}
}

func TestInside(t *testing.T) {
	b := &Browser{allowed: map[string]bool{"127.0.0.1:8080": true}}
	for raw, want := range map[string]bool{
		"http://127.0.0.1:8080/claims/x": true, "data:image/png;base64,AAAA": true, "about:blank": true,
		"http://127.0.0.1:8081/": false, "https://127.0.0.1:8080/": true, "http://localhost:8080/": false,
		"https://schema.org/": false, "ftp://127.0.0.1:8080/": false, "::": false,
	} {
		if got := b.inside(raw); got != want {
			t.Errorf("inside(%q) = %v, want %v", raw, got, want)
		}
	}
}

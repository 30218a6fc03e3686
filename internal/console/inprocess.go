package console

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// outerKey carries the browser's request into the API calls a page
// makes, so the API sees the browser's address (its limits per client)
// and not the console's.
type outerKey struct{}

// withOuter returns ctx carrying the browser's request r.
func withOuter(ctx context.Context, r *http.Request) context.Context {
	return context.WithValue(ctx, outerKey{}, r)
}

// inProcess is an http.RoundTripper that hands each request to the API's
// handler in this process: the console calls the very routes (gates,
// limits, use cases) a curl user calls, without a network hop.
type inProcess struct {
	api http.Handler
}

// RoundTrip serves req with the API. The browser's address and, when it
// came through a proxy, its X-Forwarded-For go with it: the API believes
// the latter only from the proxies it trusts, exactly as for a direct call.
func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if outer, ok := req.Context().Value(outerKey{}).(*http.Request); ok {
		req.RemoteAddr = outer.RemoteAddr
		if xff := outer.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			req.Header["X-Forwarded-For"] = xff
		}
	}
	if req.RemoteAddr == "" {
		// No browser behind the call: name no address rather than one
		// that would share a budget with a real client.
		req.RemoteAddr = "0.0.0.0:0"
	}
	req.RequestURI = req.URL.RequestURI()
	w := &recorder{header: http.Header{}}
	t.api.ServeHTTP(w, req)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{Status: http.StatusText(w.status), StatusCode: w.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())), ContentLength: int64(w.body.Len()),
		Request: req}, nil
}

// recorder is the http.ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

package httpsig

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Target is the request a signature speaks about: the parts of it that the
// derived components of RFC 9421 section 2.2 are taken from. Sign takes it
// from the request being sent; TargetOf takes it from a request a server
// received. A forward-auth endpoint, which receives a subrequest about some
// other request, builds it from what its proxy tells it of the original.
type Target struct {
	Method string // as sent, e.g. "POST"; case-sensitive
	Scheme string // "https" or "http"
	// Authority is the host, with the port when not the scheme's default,
	// e.g. "api.example.com" or "127.0.0.1:8443". It is lower-cased and a
	// default port dropped before use.
	Authority string
	// RequestURI is the request target in origin form: the path, with "?"
	// and the query when there is one, exactly as sent (not decoded). An
	// empty RequestURI means "/".
	RequestURI string
}

// TargetOf returns the Target of a request received by a server: its
// method, "https" when r.TLS is set and "http" otherwise, r.Host and
// r.URL.RequestURI(). Behind a proxy that terminates TLS, set Scheme on the
// result to what the client used.
func TargetOf(r *http.Request) Target {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	t := Target{Method: r.Method, Scheme: scheme, Authority: r.Host}
	if r.URL != nil {
		t.RequestURI = r.URL.RequestURI()
	}
	return t
}

// clientTarget returns the Target of a request about to be sent by a client,
// as net/http's client would write it.
func clientTarget(r *http.Request) Target {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	return Target{Method: method, Scheme: r.URL.Scheme, Authority: host, RequestURI: r.URL.RequestURI()}
}

// normalized checks t and returns it with the scheme and authority
// normalized as RFC 9421 section 2.2 asks (lower case, no default port) and
// an empty RequestURI replaced by "/".
func (t Target) normalized() (Target, error) {
	t.Scheme = strings.ToLower(t.Scheme)
	if t.Scheme != "http" && t.Scheme != "https" {
		return Target{}, fmt.Errorf("target scheme must be http or https")
	}
	if t.Method == "" || !isToken(t.Method) {
		return Target{}, fmt.Errorf("target method is not a token")
	}
	auth := strings.ToLower(t.Authority)
	if auth == "" || strings.ContainsAny(auth, "/?#@ \t\r\n") || !validSFString(auth) {
		return Target{}, fmt.Errorf("target authority is not a host")
	}
	if host, port, err := net.SplitHostPort(auth); err == nil {
		if t.Scheme == "https" && port == "443" || t.Scheme == "http" && port == "80" {
			auth = host
			if strings.IndexByte(host, ':') >= 0 {
				auth = "[" + host + "]"
			}
		}
	}
	t.Authority = auth
	if t.RequestURI == "" {
		t.RequestURI = "/"
	}
	if t.RequestURI[0] != '/' {
		return Target{}, fmt.Errorf("target request uri must start with /")
	}
	if strings.ContainsAny(t.RequestURI, " #\t\r\n") || !validSFString(t.RequestURI) {
		return Target{}, fmt.Errorf("target request uri has a character not allowed in a uri")
	}
	return t, nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTChar(s[i]) {
			return false
		}
	}
	return true
}

func (t Target) path() string {
	path, _, _ := strings.Cut(t.RequestURI, "?")
	if path == "" {
		return "/"
	}
	return path
}

func (t Target) hasQuery() bool { return strings.IndexByte(t.RequestURI, '?') >= 0 }

// The derived components keyledger supports (RFC 9421 section 2.2); the
// others (@query-param, @status) are refused.
const (
	compMethod        = "@method"
	compTargetURI     = "@target-uri"
	compAuthority     = "@authority"
	compScheme        = "@scheme"
	compRequestTarget = "@request-target"
	compPath          = "@path"
	compQuery         = "@query"
)

// componentValue returns the value of the component named name for the
// request described by t (normalized) and h.
func componentValue(name string, t Target, h http.Header) (string, error) {
	switch name {
	case compMethod:
		return t.Method, nil
	case compTargetURI:
		return t.Scheme + "://" + t.Authority + t.RequestURI, nil
	case compAuthority:
		return t.Authority, nil
	case compScheme:
		return t.Scheme, nil
	case compRequestTarget:
		return t.RequestURI, nil
	case compPath:
		return t.path(), nil
	case compQuery:
		_, q, _ := strings.Cut(t.RequestURI, "?")
		return "?" + q, nil
	}
	if strings.HasPrefix(name, "@") {
		return "", fmt.Errorf("derived component %s is not supported", quoteShort(name))
	}
	if !validFieldName(name) {
		return "", fmt.Errorf("component %s is not a lower-case field name", quoteShort(name))
	}
	lines := h.Values(name)
	if len(lines) == 0 {
		return "", fmt.Errorf("covered field %s is not in the request", name)
	}
	// RFC 9421 section 2.1: each field line's value trimmed, then joined.
	var b strings.Builder
	for i, v := range lines {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strings.Trim(v, " \t"))
	}
	return b.String(), nil
}

func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || !isTChar(c) {
			return false
		}
	}
	return true
}

// signatureBase builds the signature base of RFC 9421 section 2.5: one
// `"name": value` line per covered component, then the @signature-params
// line, params being the serialized Inner List of the signature.
func signatureBase(components []string, t Target, h http.Header, params string) ([]byte, error) {
	var b bytes.Buffer
	for _, name := range components {
		v, err := componentValue(name, t, h)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("component %s has a line break", quoteShort(name))
		}
		var line strings.Builder
		writeString(&line, name)
		b.WriteString(line.String())
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(params)
	return b.Bytes(), nil
}

// quoteShort quotes s for an error message, cut short so that hostile input
// cannot make messages long.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

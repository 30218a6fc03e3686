package handlers_test

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/handlers"
)

func mustProxies(t testing.TB, items ...string) handlers.TrustedProxies {
	t.Helper()
	p, err := handlers.ParseTrustedProxies(items...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func clientAddr(p handlers.TrustedProxies, peer string, xff ...string) netip.Addr {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = peer
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return p.ClientAddr(r)
}

func TestTrustedProxies_ClientAddr(t *testing.T) {
	t.Parallel()
	none := handlers.TrustedProxies{}
	proxies := mustProxies(t, "10.0.0.0/8, 192.0.2.10", "2001:db8:ffff::/48")
	tests := []struct {
		name    string
		proxies handlers.TrustedProxies
		peer    string
		xff     []string
		want    string
	}{
		{"NoProxiesNoHeader", none, "198.51.100.1:1234", nil, "198.51.100.1"},
		// Without trusted proxies the header is ignored, whatever it says.
		{"NoProxiesSpoofed", none, "198.51.100.1:1234", []string{"203.0.113.7"}, "198.51.100.1"},
		{"NoProxiesSpoofedTrustedLooking", none, "198.51.100.1:1234", []string{"10.0.0.1"}, "198.51.100.1"},
		// An untrusted peer's header is ignored too.
		{"UntrustedPeerSpoofed", proxies, "198.51.100.1:1234", []string{"203.0.113.7"}, "198.51.100.1"},
		{"UntrustedPeerSpoofedChain", proxies, "198.51.100.1:1234", []string{"203.0.113.7, 10.0.0.1"}, "198.51.100.1"},
		{"TrustedPeerNoHeader", proxies, "10.0.0.5:1234", nil, "10.0.0.5"},
		{"TrustedPeerOneHop", proxies, "10.0.0.5:1234", []string{"203.0.113.7"}, "203.0.113.7"},
		// Several trusted hops: the rightmost untrusted address.
		{"SeveralTrustedHops", proxies, "10.0.0.5:1234", []string{"203.0.113.7, 10.1.1.1, 192.0.2.10"}, "203.0.113.7"},
		{"SeveralHeaders", proxies, "10.0.0.5:1234", []string{"203.0.113.7", "10.1.1.1", "192.0.2.10"}, "203.0.113.7"},
		// What the client wrote in front of what the proxy appended.
		{"ClientPrefixIgnored", proxies, "10.0.0.5:1234", []string{"1.1.1.1, 8.8.8.8, 203.0.113.7"}, "203.0.113.7"},
		{"ClientClaimsTrusted", proxies, "10.0.0.5:1234", []string{"10.9.9.9, 203.0.113.7"}, "203.0.113.7"},
		// Every hop trusted: the furthest one.
		{"AllTrusted", proxies, "10.0.0.5:1234", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		// Malformed entries: the last hop that could be read.
		{"MalformedRightmost", proxies, "10.0.0.5:1234", []string{"203.0.113.7, garbage"}, "10.0.0.5"},
		{"MalformedBehindTrusted", proxies, "10.0.0.5:1234", []string{"unknown, 10.1.1.1"}, "10.1.1.1"},
		{"MalformedLeftOfClient", proxies, "10.0.0.5:1234", []string{"garbage, 203.0.113.7"}, "203.0.113.7"},
		{"MalformedLeadingZeros", proxies, "10.0.0.5:1234", []string{"010.0.0.1"}, "10.0.0.5"},
		{"MalformedCIDR", proxies, "10.0.0.5:1234", []string{"203.0.113.0/24"}, "10.0.0.5"},
		{"EmptyElements", proxies, "10.0.0.5:1234", []string{" 203.0.113.7 ,, ", ""}, "203.0.113.7"},
		{"OnlySpaces", proxies, "10.0.0.5:1234", []string{"  ,  "}, "10.0.0.5"},
		// Address forms proxies write.
		{"WithPort", proxies, "10.0.0.5:1234", []string{"203.0.113.7:5678"}, "203.0.113.7"},
		{"IPv6", proxies, "10.0.0.5:1234", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv6Bracketed", proxies, "10.0.0.5:1234", []string{"[2001:db8::7]"}, "2001:db8::7"},
		{"IPv6BracketedWithPort", proxies, "10.0.0.5:1234", []string{"[2001:db8::7]:443"}, "2001:db8::7"},
		{"IPv6Zone", proxies, "10.0.0.5:1234", []string{"fe80::1%eth0"}, "fe80::1"},
		{"IPv4Mapped", proxies, "10.0.0.5:1234", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"IPv4MappedTrusted", proxies, "10.0.0.5:1234", []string{"203.0.113.7, ::ffff:10.1.1.1"}, "203.0.113.7"},
		{"IPv6TrustedPeer", proxies, "[2001:db8:ffff::1]:1234", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv4MappedPeer", proxies, "[::ffff:10.0.0.5]:1234", []string{"203.0.113.7"}, "203.0.113.7"},
		{"UnreadablePeer", proxies, "@", []string{"203.0.113.7"}, "invalid IP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientAddr(tc.proxies, tc.peer, tc.xff...); got.String() != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	p := mustProxies(t, " 10.0.0.0/8 ,192.0.2.10", "", "2001:db8::/32,::ffff:172.16.0.0/108", "172.16.0.1/12")
	if got, want := p.String(), "10.0.0.0/8,192.0.2.10/32,2001:db8::/32,172.16.0.0/12,172.16.0.0/12"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1/8/8", "1.2.3", "10.0.0.1:80"} {
		if _, err := handlers.ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q): got nil error, want one", bad)
		}
	}
}

// referenceClientAddr is the right-to-left walk written the plain way,
// splitting the whole header, to check ClientAddr against.
func referenceClientAddr(trusted func(netip.Addr) bool, peer netip.Addr, xff []string) netip.Addr {
	if !peer.IsValid() || !trusted(peer) {
		return peer
	}
	var entries []string
	for _, v := range xff {
		entries = append(entries, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(entries) - 1; i >= 0; i-- {
		e := strings.Trim(entries[i], " \t")
		if e == "" {
			continue
		}
		a := parseForReference(e)
		if !a.IsValid() {
			return client
		}
		if !trusted(a) {
			return a
		}
		client = a
	}
	return client
}

func parseForReference(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap().WithZone("")
		}
	}
	return netip.Addr{}
}

// FuzzTrustedProxies_ClientAddr: ClientAddr never panics, agrees with the
// plain reference walk, never lets an untrusted peer's header count, and
// returns either the peer or an address the header holds.
func FuzzTrustedProxies_ClientAddr(f *testing.F) {
	f.Add("10.0.0.5:1234", "203.0.113.7, 10.1.1.1", "")
	f.Add("198.51.100.1:1", "10.0.0.1", "")
	f.Add("[2001:db8:ffff::1]:1", "[2001:db8::7]:443", "garbage")
	f.Add("10.0.0.5:1", " , ,", "fe80::1%eth0")
	f.Add("10.0.0.5:1", "unknown, 10.1.1.1", "::ffff:10.1.1.1")
	proxies := mustProxies(f, "10.0.0.0/8", "2001:db8:ffff::/48")
	trusted := func(a netip.Addr) bool {
		return netip.MustParsePrefix("10.0.0.0/8").Contains(a) || netip.MustParsePrefix("2001:db8:ffff::/48").Contains(a)
	}
	f.Fuzz(func(t *testing.T, peer, xff1, xff2 string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		var xff []string
		for _, v := range []string{xff1, xff2} {
			if v != "" {
				r.Header.Add("X-Forwarded-For", v)
				xff = append(xff, v)
			}
		}
		got := proxies.ClientAddr(r)
		peerAddr := parseForReference(peer)
		if want := referenceClientAddr(trusted, peerAddr, xff); got != want {
			t.Fatalf("ClientAddr(%q, %q): got %v, want %v", peer, xff, got, want)
		}
		if got.IsValid() != peerAddr.IsValid() {
			t.Fatalf("ClientAddr(%q, %q): got %v for peer %v", peer, xff, got, peerAddr)
		}
		if peerAddr.IsValid() && !trusted(peerAddr) && got != peerAddr {
			t.Fatalf("untrusted peer %v: got %v, want the peer whatever X-Forwarded-For says", peerAddr, got)
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("got %v, want no zone and no IPv4-mapped form", got)
		}
		if (handlers.TrustedProxies{}).ClientAddr(r) != peerAddr {
			t.Fatalf("no trusted proxies: got %v, want the peer %v", (handlers.TrustedProxies{}).ClientAddr(r), peerAddr)
		}
	})
}

package handlers

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the reverse proxies whose X-Forwarded-For the API
// believes when it tells clients apart for rate limits. The zero value
// trusts none: the client is the connection's peer, whatever headers it
// sends. It is safe for concurrent use.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrustedProxies parses addresses and CIDR prefixes ("192.0.2.7",
// "10.0.0.0/8", "2001:db8::/32"); each argument may be a comma-separated
// list. Empty items are ignored.
func ParseTrustedProxies(items ...string) (TrustedProxies, error) {
	var p TrustedProxies
	for _, item := range items {
		for s := range strings.SplitSeq(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if strings.Contains(s, "/") {
				prefix, err := netip.ParsePrefix(s)
				if err != nil {
					return TrustedProxies{}, fmt.Errorf("trusted proxy %q: %w", s, err)
				}
				p.prefixes = append(p.prefixes, unmapPrefix(prefix).Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return TrustedProxies{}, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR prefix", s)
			}
			a = a.Unmap().WithZone("")
			p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return p, nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into
// its IPv4 form, as addresses are unmapped before they are compared.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// String lists the prefixes, comma-separated.
func (p TrustedProxies) String() string {
	s := make([]string, len(p.prefixes))
	for i, prefix := range p.prefixes {
		s[i] = prefix.String()
	}
	return strings.Join(s, ",")
}

// Trusts reports whether r came straight from a trusted proxy: its
// connection's peer is one. Only then may headers a proxy sets, such as
// X-Forwarded-*, be believed.
func (p TrustedProxies) Trusts(r *http.Request) bool {
	peer := parseHostAddr(r.RemoteAddr)
	return peer.IsValid() && p.trusts(peer)
}

func (p TrustedProxies) trusts(a netip.Addr) bool {
	for _, prefix := range p.prefixes {
		if prefix.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the address of the client that sent r (invalid when
// the connection's peer address cannot be read).
//
// Unless the connection's peer is a trusted proxy, that peer is the
// client, and X-Forwarded-For is ignored: a client cannot choose its own
// address, so it cannot shed a rate limit by sending a new one. When the
// peer is trusted, X-Forwarded-For (every such header, in order, as one
// list) is read from the right, the end each proxy appends to: trusted
// proxies are skipped and the first address that is not one is the
// client. Should the list run out, or hold an entry that is not an
// address ("unknown", garbage), before an untrusted address turns up, the
// client is the last hop that could be read: nothing left of it can be
// vouched for.
func (p TrustedProxies) ClientAddr(r *http.Request) netip.Addr {
	peer := parseHostAddr(r.RemoteAddr)
	if !peer.IsValid() || len(p.prefixes) == 0 || !p.trusts(peer) {
		return peer
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		list := hops[i]
		for list != "" {
			entry := list
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				entry, list = list[j+1:], list[:j]
			} else {
				list = ""
			}
			entry = strings.Trim(entry, " \t")
			if entry == "" {
				continue // an empty list element, as in "a,,b"
			}
			a := parseHostAddr(entry)
			if !a.IsValid() {
				return client
			}
			if !p.trusts(a) {
				return a
			}
			client = a
		}
	}
	return client
}

// parseHostAddr reads "addr", "addr:port", "[addr]" or "[addr]:port" and
// returns the address without zone, IPv4-mapped IPv6 as IPv4; invalid when
// s is none of these.
func parseHostAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
				return netip.Addr{}
			}
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
				return netip.Addr{}
			}
		} else {
			a = ap.Addr()
		}
	}
	return a.Unmap().WithZone("")
}

// limitKey is the key a client address is rate-limited under: the address
// for IPv4, its /64 for IPv6, since one host commonly holds a whole /64
// and could otherwise take a fresh address for every attempt.
func limitKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

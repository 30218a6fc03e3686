package validator_test

import (
	"strconv"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/validator"
)

func TestParseCost(t *testing.T) {
	for _, tc := range []struct {
		query, header []string
		want          uint64
	}{
		{nil, nil, 1},
		{[]string{"3"}, nil, 3},
		{nil, []string{"7"}, 7},
		{[]string{"5"}, []string{"5"}, 5},
		{[]string{"1000000"}, nil, domain.MaxCost},
	} {
		if got, err := validator.ParseCost(tc.query, tc.header); err != nil || got != tc.want {
			t.Errorf("ParseCost(%q, %q) = %d, %v; want %d", tc.query, tc.header, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ query, header []string }{
		{[]string{"0"}, nil}, {[]string{""}, nil}, {[]string{"-1"}, nil}, {[]string{"+1"}, nil}, {[]string{"01"}, nil},
		{[]string{"1000001"}, nil}, {[]string{"1e3"}, nil}, {[]string{" 1"}, nil}, {nil, []string{"two"}},
		{[]string{"1", "1"}, nil}, {nil, []string{"1", "2"}}, {[]string{"1"}, []string{"2"}},
		{[]string{"18446744073709551617"}, nil},
	} {
		if got, err := validator.ParseCost(tc.query, tc.header); domain.KindOf(err) != domain.Invalid {
			t.Errorf("ParseCost(%q, %q) = %d, %v; want Invalid", tc.query, tc.header, got, err)
		}
	}
}

func FuzzParseCost(f *testing.F) {
	for _, s := range []string{"1", "0", "999999", "1000000", "1000001", "-1", "", "01", "1e3"} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, q, h string) {
		var query, header []string
		if q != "" {
			query = []string{q}
		}
		if h != "" {
			header = []string{h}
		}
		n, err := validator.ParseCost(query, header)
		if err != nil {
			if domain.KindOf(err) != domain.Invalid {
				t.Fatalf("error of kind %v", domain.KindOf(err))
			}
			return
		}
		if n < 1 || n > domain.MaxCost {
			t.Fatalf("cost %d out of bounds", n)
		}
		if s := strconv.FormatUint(n, 10); (q != "" && q != s) || (h != "" && h != s) {
			t.Fatalf("cost %d from %q / %q: not its only spelling", n, q, h)
		}
	})
}

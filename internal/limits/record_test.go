package limits

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// Seeds of the decoders: valid records and near misses.
var (
	rateSeeds = []string{
		`{"v":1,"limit":100,"taken":37}`,
		`{"v":1,"limit":100,"taken":37,"extra":1}`,
		`{"v":2,"limit":100,"taken":37}`,
		`{"v":1,"limit":0,"taken":1}`,
		`{"v":1,"limit":100,"taken":-1}`,
		`{"v":1,"limit":100,"taken":1e30}`,
		`{"v":1,"limit":100,"taken":3}{}`,
		`null`, `[]`, ``,
	}
	creditSeeds = []string{
		`{"v":1,"epoch":3,"period":2,"added":10,"pool":800,"leases":[{"id":"n1/0a","amount":50,"expires":1765000000000}]}`,
		`{"v":1,"epoch":3,"period":0,"added":0,"pool":0}`,
		`{"v":1,"epoch":3,"period":-1,"added":0,"pool":0}`,
		`{"v":1,"epoch":1,"period":0,"added":0,"pool":1,"leases":[{"id":"a","amount":1,"expires":1},{"id":"a","amount":1,"expires":1}]}`,
		`{"v":1,"epoch":1,"period":0,"added":0,"pool":1,"leases":[{"id":"a b","amount":1,"expires":1}]}`,
		`{"v":1,"epoch":1,"period":0,"added":0,"pool":1,"leases":[{"id":"a","amount":0,"expires":1}]}`,
		`{"v":1,"epoch":1,"period":0,"added":0,"pool":18446744073709551615}`,
		`{"v":1,"epoch":1,"period":0,"added":0,"pool":1,"leases":[{"id":"a","amount":9007199254740992,"expires":1},{"id":"b","amount":9007199254740992,"expires":1}]}`,
		`{"V":1,"epoch":1,"period":0,"added":0,"pool":1}`,
	}
)

// TestDecode_Strict: the decoders accept the records the nodes write and
// refuse anything else: unknown fields, other versions, counters out of
// bounds, duplicate or odd lease ids, trailing data.
func TestDecode_Strict(t *testing.T) {
	for i, s := range rateSeeds {
		_, err := decodeRate([]byte(s))
		if (err == nil) != (i == 0) {
			t.Errorf("rate %s: error %v", s, err)
		}
		if err != nil && !errors.Is(err, errBadRecord) {
			t.Errorf("rate %s: %v, want errBadRecord", s, err)
		}
	}
	for i, s := range creditSeeds {
		_, err := decodeCredits([]byte(s))
		if (err == nil) != (i < 2) {
			t.Errorf("credits %s: error %v", s, err)
		}
	}
	if _, err := decodeCredits(bytes.Repeat([]byte(" "), maxRecordBytes+1)); err == nil {
		t.Error("an oversized record decoded")
	}
}

// FuzzDecodeRate: no input panics the decoder; what it accepts is within
// bounds and encodes back to itself.
func FuzzDecodeRate(f *testing.F) {
	for _, s := range rateSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRate(data)
		if err != nil {
			return
		}
		if r.Limit < 1 || r.Limit > domain.MaxRateLimit || r.Taken > maxCount {
			t.Fatalf("accepted out of bounds: %+v", r)
		}
		again, err := decodeRate(r.encode())
		if err != nil || again != r {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, r)
		}
	})
}

// FuzzDecodeCredits: no input panics the decoder or settling the record
// under a policy; what it accepts is within bounds, encodes back to
// itself, and settling never makes a pool beyond the counters' bound.
func FuzzDecodeCredits(f *testing.F) {
	for _, s := range creditSeeds {
		f.Add([]byte(s), uint64(3), uint64(5), int64(3600))
	}
	f.Fuzz(func(t *testing.T, data []byte, epoch, added uint64, at int64) {
		r, err := decodeCredits(data)
		if err != nil {
			return
		}
		if len(r.Leases) > maxLeases || r.held() > maxCount || r.Pool > maxCount {
			t.Fatalf("accepted out of bounds: %+v", r)
		}
		var again creditRecord
		if again, err = decodeCredits(r.encode()); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, r)
		}
		since := time.Unix(0, 0)
		p := domain.CreditPolicy{Epoch: epoch % 8, Since: since, Initial: added % 1000, Added: added,
			Refill: &domain.Refill{Amount: 10, Interval: domain.Period(time.Hour)}}
		now := since.Add(time.Duration(at%(1<<40)) * time.Second)
		r.settle(p, now, now, time.Second)
		if err := r.check(); err != nil {
			b, _ := json.Marshal(r)
			t.Fatalf("settled into a bad record %s: %v", b, err)
		}
	})
}

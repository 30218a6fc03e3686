package pwlist_test

import (
	"bytes"
	"compress/gzip"
	"runtime"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/pwlist"
)

func TestCommon(t *testing.T) {
	t.Parallel()
	l := pwlist.Common()
	// 100,000 passwords fold to 96,518 values (case does not count).
	if got, want := l.Len(), 96_518; got != want {
		t.Fatalf("len: got %d, want %d", got, want)
	}
	for _, v := range []string{"123456", "password", "qwerty", "iloveyou", "trustno1", "passwordpassword",
		"qwertyuiopasdfghjkl"} {
		if !l.Contains(domain.FoldPassword(v)) {
			t.Errorf("%q: got not on the list, want on it", v)
		}
	}
	for _, v := range []string{"", "correcthorsebatterystaple", "Password", "x7#kq!mv9s"} {
		if l.Contains(v) {
			t.Errorf("%q: got on the list, want not", v)
		}
	}
}

func gz(t *testing.T, text string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParse(t *testing.T) {
	t.Parallel()
	if l, err := pwlist.Parse(gz(t, "abc\nbcd\n")); err != nil || l.Len() != 2 || !l.Contains("bcd") || l.Contains("b") {
		t.Fatalf("OK: got %v, %v", l, err)
	}
	for name, data := range map[string][]byte{
		"ErrNotGzip":    []byte("abc\n"),
		"ErrTruncated":  gz(t, "abc\nbcd\n")[:10],
		"ErrEmpty":      gz(t, ""),
		"ErrEmptyLine":  gz(t, "abc\n\nbcd\n"),
		"ErrNotFolded":  gz(t, "Abc\n"),
		"ErrSpace":      gz(t, "a bc\n"),
		"ErrUnsorted":   gz(t, "bcd\nabc\n"),
		"ErrRepeat":     gz(t, "abc\nabc\n"),
		"ErrNoLineEnd":  gz(t, "abc\nbcd"),
		"ErrCRLineEnds": gz(t, "abc\r\nbcd\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			if l, err := pwlist.Parse(data); err == nil {
				t.Fatalf("got %d values, want an error", l.Len())
			}
		})
	}
}

// BenchmarkContains measures one lookup in the embedded list, and reports
// the heap the loaded list holds (MiB-list).
func BenchmarkContains(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l, err := pwlist.Parse(pwlist.EmbeddedData)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	probes := []string{"password", "correcthorsebatterystaple", "zzzzzzzz", "123456"}
	for i := 0; b.Loop(); i++ {
		l.Contains(probes[i%len(probes)])
	}
	b.ReportMetric(held, "MiB-list")
	runtime.KeepAlive(l)
}

// BenchmarkParse measures reading the embedded list: once per process.
func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := pwlist.Parse(pwlist.EmbeddedData); err != nil {
			b.Fatal(err)
		}
	}
}

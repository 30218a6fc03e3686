package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
)

// Bucket is the name of the object store bucket of a stream's snapshots
// (its JetStream stream is OBJ_<Bucket>).
func Bucket(stream string) string { return stream + "_SNAPSHOTS" }

// Kind is what a snapshot holds, and so who reads it. It starts the
// snapshot's object name; the position follows, zero-padded, so that
// names sort as positions do.
type Kind string

// Kinds of snapshots.
const (
	// KindLookup holds the validation lookup, which validation nodes
	// start from (format version 1).
	KindLookup Kind = "snapshot-"
	// KindLedger holds the lookup and serve's other read models, which
	// serve starts from (format version 2).
	KindLedger Kind = "ledger-"
)

// objectName is the object name of the snapshot of kind at seq.
func objectName(kind Kind, seq uint64) string { return fmt.Sprintf("%s%020d", kind, seq) }

// SetUp creates the snapshot bucket of stream, with as many replicas as
// the stream, unless it exists. It needs the operator's credentials:
// `keyledger setup`, or serve on its embedded server.
func SetUp(ctx context.Context, js jetstream.JetStream, stream string) error {
	if _, err := js.ObjectStore(ctx, Bucket(stream)); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("snapshot bucket %s: %w", Bucket(stream), err)
	}
	replicas := 1
	if s, err := js.Stream(ctx, stream); err == nil {
		replicas = s.CachedInfo().Config.Replicas
	}
	_, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: Bucket(stream),
		Description: "signed snapshots of the validation lookup of " + stream, Replicas: replicas,
		Storage: jetstream.FileStorage})
	if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
		return fmt.Errorf("snapshot bucket %s: %w", Bucket(stream), err)
	}
	return nil
}

// ErrNoBucket is returned by Open when the stream has no snapshot bucket.
var ErrNoBucket = errors.New("no snapshot bucket")

// Store reads and writes the snapshots of one stream.
type Store struct {
	obs jetstream.ObjectStore
}

// Open binds to the snapshot bucket of stream. Errors: ErrNoBucket,
// Unavailable.
func Open(ctx context.Context, js jetstream.JetStream, stream string) (*Store, error) {
	obs, err := js.ObjectStore(ctx, Bucket(stream))
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w %s", ErrNoBucket, Bucket(stream))
	}
	if err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "snapshot bucket unavailable")
	}
	return &Store{obs: obs}, nil
}

// Info describes a stored snapshot.
type Info struct {
	Name string
	Seq  uint64 // the position its name claims (untrusted until checked)
	Size uint64 // bytes
	// Froze is, from Writer.WriteNow, how long the projector was held
	// while the snapshot was taken (commands wait for it meanwhile).
	Froze time.Duration
}

// List returns the snapshots of kind stored, newest (highest position)
// first. Objects not named as snapshots of kind are left out. Errors:
// Unavailable.
func (s *Store) List(ctx context.Context, kind Kind) ([]Info, error) {
	objs, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "snapshot bucket unavailable")
	}
	var out []Info
	for _, o := range objs {
		digits, ok := strings.CutPrefix(o.Name, string(kind))
		seq, err := strconv.ParseUint(digits, 10, 64)
		if !ok || err != nil || o.Deleted {
			continue
		}
		out = append(out, Info{Name: o.Name, Seq: seq, Size: o.Size})
	}
	slices.SortFunc(out, func(a, b Info) int { return -cmpUint(a.Seq, b.Seq) })
	return out, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ErrTooLarge is returned by Get for an object larger than allowed.
var ErrTooLarge = errors.New("snapshot larger than allowed")

// Get reads a snapshot, refusing one larger than max bytes before reading
// it. Errors: ErrTooLarge, Unavailable.
func (s *Store) Get(ctx context.Context, name string, max uint64) ([]byte, error) {
	info, err := s.obs.GetInfo(ctx, name)
	if err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "snapshot unavailable")
	}
	if info.Size > max {
		return nil, fmt.Errorf("%w: %s holds %d bytes, at most %d allowed", ErrTooLarge, name, info.Size, max)
	}
	if _, ok := ctx.Deadline(); !ok {
		// Without a deadline the object store gives the whole read its
		// default request timeout (5 s), too short for a large snapshot:
		// allow a minute and a second for every 8 MB.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute+time.Duration(info.Size>>23)*time.Second)
		defer cancel()
	}
	r, err := s.obs.Get(ctx, name)
	if err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "snapshot unavailable")
	}
	defer r.Close()
	// The object store checks the object's digest once read to the end.
	// One byte more than the object holds: the read that finds the end
	// must not grow (copy) the buffer.
	buf := make([]byte, 0, info.Size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if uint64(len(buf)) > max {
			return nil, fmt.Errorf("%w: %s", ErrTooLarge, name)
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, domain.Wrap(domain.Unavailable, err, "snapshot unavailable")
		}
	}
}

// Put stores a snapshot of kind at position seq and returns its name.
// Errors: Unavailable.
func (s *Store) Put(ctx context.Context, kind Kind, seq uint64, data []byte) (string, error) {
	name := objectName(kind, seq)
	if _, err := s.obs.PutBytes(ctx, name, data); err != nil {
		return "", domain.Wrap(domain.Unavailable, err, "snapshot not stored")
	}
	return name, nil
}

// Prune deletes all but the newest keep snapshots of kind (keep >= 1)
// and returns how many it deleted. Errors: Unavailable.
func (s *Store) Prune(ctx context.Context, kind Kind, keep int) (int, error) {
	list, err := s.List(ctx, kind)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range list[min(max(keep, 1), len(list)):] {
		if err := s.obs.Delete(ctx, o.Name); err != nil {
			return n, domain.Wrap(domain.Unavailable, err, "snapshot not deleted")
		}
		n++
	}
	return n, nil
}

package eventstore

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
)

// trustView is a store's fold of the log's trust events (the subject
// Subject(domain.CategoryLedger, domain.TrustAggregate)): every message is
// verified against the keys trusted at its own stream sequence, never
// against stream metadata or anything else a NATS client can change.
type trustView struct {
	mu      sync.RWMutex
	fold    domain.Trust
	covered uint64                       // every trust message at or below this sequence is folded
	read    uint64                       // the newest trust-subject message looked at, folded or refused
	refused map[uint64]error             // trust-subject messages the fold refused
	pinned  map[string]ed25519.PublicKey // WithTrustedKeys; nil: no pin
	// unpinnedGenesis is why a genesis was refused for want of a pinned
	// signer: a pinned store refuses to open such a log.
	unpinnedGenesis error
	root            string // the fingerprint of the folded genesis (TrustRootOf)
	wantRoot        string // WithTrustRoot; "": no pin

	refreshing sync.Mutex // one read of the trust subject at a time
}

// keyAt returns the key with id trusted at seq. Called with mu held.
func (v *trustView) keyAt(id string, seq uint64) (ed25519.PublicKey, bool) {
	if !v.fold.HasGenesis() {
		k, ok := v.pinned[id] // a log from before trust events: the pin
		return k, ok
	}
	k, ok := v.fold.KeyAt(id, seq)
	if !ok {
		return nil, false
	}
	return ed25519.PublicKey(k[:]), true
}

// ErrTrustUnavailable is wrapped by errors of messages that could not be
// verified because the log's trust events could not be read: not forged,
// not verified either. It has kind Unavailable.
var ErrTrustUnavailable = errors.New("the log's trust events cannot be read")

// trustSubject is the subject of the trust events.
func (s *Store) trustSubject() string { return s.Subject(domain.CategoryLedger, domain.TrustAggregate) }

// verify checks a stored message's signature against the keys the trust
// events trust at its sequence, first bringing the trust view up to that
// sequence.
func (s *Store) verify(ctx context.Context, seq uint64, subject string, header nats.Header, data []byte) error {
	id := header.Get(HeaderSigner)
	sig, err := base64.RawURLEncoding.DecodeString(header.Get(HeaderSignature))
	if id == "" || err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: missing or malformed signature", ErrForged)
	}
	if err := s.trustUpTo(ctx, seq, subject, header, data); err != nil {
		return err
	}
	v := &s.trust
	v.mu.RLock()
	key, ok := v.keyAt(id, seq)
	refusal := v.refused[seq]
	v.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: signer %s is not trusted at sequence %d", ErrForged, id, seq)
	}
	// A signature this store made over these very bytes, by the key it
	// signs with, verifies by construction: skip the costly check.
	mine := s.signer != nil && id == s.signerID && key.Equal(s.signer.Public()) &&
		s.own.made(ownDigest(subject, data, sig))
	if !mine && !ed25519.Verify(key, signedBytes(subject, data), sig) {
		return fmt.Errorf("%w: bad signature by %s", ErrForged, id)
	}
	if subject == s.trustSubject() && refusal != nil {
		return fmt.Errorf("%w: trust event refused: %v", ErrForged, refusal)
	}
	return nil
}

// trustUpTo makes sure every trust event stored at or before seq is
// folded. A message right after what the view covers is folded from
// itself (the common case: a subscription reading the log in order costs
// no look-up); otherwise the trust subject is read up to the stream's
// head. A caller without a deadline (a subscription) retries until the
// read succeeds: it must not act on a message it cannot verify.
func (s *Store) trustUpTo(ctx context.Context, seq uint64, subject string, header nats.Header, data []byte) error {
	v := &s.trust
	v.mu.RLock()
	covered := v.covered
	v.mu.RUnlock()
	if seq <= covered {
		return nil
	}
	if seq == covered+1 {
		v.mu.Lock()
		if v.covered == seq-1 {
			if subject == s.trustSubject() {
				v.foldMessage(s, seq, header, data)
			}
			v.covered = seq
		}
		done := v.covered >= seq
		v.mu.Unlock()
		if done {
			return nil
		}
	}
	for attempt := 0; ; attempt++ {
		err := s.refreshTrust(ctx, seq)
		if err == nil {
			return nil
		}
		if _, ok := ctx.Deadline(); ok || ctx.Err() != nil {
			return domain.Wrap(domain.Unavailable, fmt.Errorf("%w: %v", ErrTrustUnavailable, err), "event log unavailable")
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, 2*time.Second)):
		}
	}
}

// refreshTrust reads the trust subject from after the last message looked
// at to its end, and then covers at least seq and the stream's head as it
// was before the read.
func (s *Store) refreshTrust(ctx context.Context, seq uint64) error {
	v := &s.trust
	v.refreshing.Lock()
	defer v.refreshing.Unlock()
	v.mu.RLock()
	covered, next := v.covered, v.read+1
	v.mu.RUnlock()
	if seq != 0 && seq <= covered {
		return nil // another refresh got there
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return err
	}
	head := info.State.LastSeq
	for {
		m, err := s.stream.GetMsg(ctx, next, jetstream.WithGetMsgSubject(s.trustSubject()))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return err
		}
		v.mu.Lock()
		if m.Sequence > v.read {
			v.foldMessage(s, m.Sequence, m.Header, m.Data)
		}
		v.mu.Unlock()
		next = m.Sequence + 1
	}
	v.mu.Lock()
	v.covered = max(v.covered, head, seq)
	v.mu.Unlock()
	return nil
}

// foldMessage folds one message of the trust subject, or records why it
// is refused. Called with mu held, in sequence order.
func (v *trustView) foldMessage(s *Store, seq uint64, header nats.Header, data []byte) {
	if seq <= v.read {
		return
	}
	v.read = seq
	if err := v.foldOne(s, seq, header, data); err != nil {
		if v.refused == nil {
			v.refused = map[uint64]error{}
		}
		v.refused[seq] = err
	}
}

func (v *trustView) foldOne(s *Store, seq uint64, header nats.Header, data []byte) error {
	id := header.Get(HeaderSigner)
	sig, err := base64.RawURLEncoding.DecodeString(header.Get(HeaderSignature))
	if id == "" || err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("missing or malformed signature")
	}
	e, err := domain.DecodeEvent(data)
	if err != nil {
		return err
	}
	if e.Category() != domain.CategoryLedger || e.Aggregate != domain.TrustAggregate {
		return fmt.Errorf("%s event of %s on the trust subject", e.Type, e.Aggregate)
	}
	e.Sequence = seq
	var key ed25519.PublicKey
	if g, ok := e.Data.(domain.LedgerGenesis); ok {
		for _, k := range g.Keys {
			if k.ID() == id {
				key = ed25519.PublicKey(k[:])
			}
		}
		if v.pinned != nil && v.pinned[id] == nil {
			err := fmt.Errorf("the genesis at sequence %d is signed by %s, not by a pinned key", seq, id)
			if !v.fold.HasGenesis() && v.unpinnedGenesis == nil {
				v.unpinnedGenesis = err
			}
			return err
		}
	} else {
		key, _ = v.keyAt(id, seq)
	}
	if key == nil {
		return fmt.Errorf("%w: %s by %s", domain.ErrUntrustedSigner, e.Type, id)
	}
	if !ed25519.Verify(key, signedBytes(s.trustSubject(), data), sig) {
		return fmt.Errorf("bad signature by %s", id)
	}
	had := v.fold.HasGenesis()
	if err := v.fold.Apply(e, id); err != nil {
		return err
	}
	if !had && v.fold.HasGenesis() {
		v.root = TrustRootOf(s.trustSubject(), data)
	}
	return nil
}

// TrustedKeys returns the ledger public keys trusted at the end of the
// log as far as the store has read it (the pinned keys on a log without
// a genesis).
func (s *Store) TrustedKeys() []ed25519.PublicKey {
	v := &s.trust
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []ed25519.PublicKey
	if !v.fold.HasGenesis() {
		for _, k := range v.pinned {
			out = append(out, k)
		}
		return out
	}
	for _, k := range v.fold.TrustedAt(v.covered + 1) {
		out = append(out, ed25519.PublicKey(k.Key[:]))
	}
	return out
}

// LedgerKeys reads the trust events up to the log's head and returns
// every key they name, with the sequences it was added and retired at
// (genesis keys: added at 0), and the sequence of the genesis (0: none).
// Errors: Unavailable.
func (s *Store) LedgerKeys(ctx context.Context) ([]domain.TrustedKey, uint64, error) {
	if err := s.refreshTrust(ctx, 0); err != nil {
		return nil, 0, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	v := &s.trust
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.fold.Keys(), v.fold.GenesisSeq(), nil
}

// SigningKey returns the public key the store signs with (nil for a
// read-only store).
func (s *Store) SigningKey() ed25519.PublicKey {
	if s.signer == nil {
		return nil
	}
	return s.signer.Public().(ed25519.PublicKey)
}

// GenesisNote describes the genesis this store appended when it opened
// the log, "" if it appended none: the caller logs it (loudly when the
// log had events before it).
func (s *Store) GenesisNote() string { return s.genesisNote }

// ErrUntrustedSigningKey is wrapped by New's error when a writable store's
// signing key is not trusted at the head of the log.
var ErrUntrustedSigningKey = errors.New("untrusted signing key")

// firstTrustRead reads the trust events when the store opens. A stream
// just created on a cluster that is still electing its leader answers "no
// responders" or times out for a while, as stream creation does: retry
// until ctx says stop.
func (s *Store) firstTrustRead(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := s.refreshTrust(ctx, 0)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, time.Second)):
		}
	}
}

// setUpTrust reads the trust events. A writable store on a log without a
// genesis appends one naming its key (on a log that already has events,
// those are then trusted when signed by that key: the upgrade of a log
// from before trust events), and refuses to open unless its key is
// trusted at the head of the log. A reader refuses a log without a
// genesis unless it pins keys.
func (s *Store) setUpTrust(ctx context.Context) error {
	if s.signer != nil {
		s.signerID = KeyID(s.SigningKey())
	}
	if err := s.firstTrustRead(ctx); err != nil {
		return fmt.Errorf("read the log's trust events: %w", err)
	}
	v := &s.trust
	v.mu.RLock()
	has := v.fold.HasGenesis()
	v.mu.RUnlock()
	// A reader opened while the ledger is creating the log can find the
	// stream before its genesis: wait for it, as for the stream itself,
	// until ctx says stop. Nothing is trusted meanwhile.
	noGenesis := func() error {
		return domain.Wrap(domain.Unavailable, fmt.Errorf("stream %s has no genesis naming a trusted ledger key: start the ledger first, or pin its key", s.name),
			"the log has no genesis yet")
	}
	for attempt := 1; !has && s.signer == nil && s.trust.pinned == nil; attempt++ {
		select {
		case <-ctx.Done():
			return noGenesis()
		case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, time.Second)):
		}
		if err := s.refreshTrust(ctx, 0); err != nil {
			if ctx.Err() != nil {
				return noGenesis()
			}
			return fmt.Errorf("read the log's trust events: %w", err)
		}
		v.mu.RLock()
		has = v.fold.HasGenesis()
		v.mu.RUnlock()
	}
	if !has && s.signer != nil {
		if err := s.appendGenesis(ctx); err != nil {
			return err
		}
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.checkTrustRoot(s.name); err != nil {
		return err
	}
	if !v.fold.HasGenesis() && v.unpinnedGenesis != nil {
		return fmt.Errorf("stream %s: %w", s.name, v.unpinnedGenesis)
	}
	if !v.fold.HasGenesis() && v.pinned == nil {
		return fmt.Errorf("stream %s has no genesis naming a trusted ledger key: start the ledger first, or pin its key", s.name)
	}
	if s.signer != nil {
		if _, ok := v.keyAt(s.signerID, v.covered+1); !ok {
			return domain.Wrap(domain.Invalid, ErrUntrustedSigningKey, fmt.Sprintf(
				"signing key %s is not trusted by the log; add it with keyledger admin ledger-keys add", s.signerID))
		}
	}
	return nil
}

// appendGenesis appends the genesis naming the store's key.
func (s *Store) appendGenesis(ctx context.Context) error {
	head, err := s.Head(ctx)
	if err != nil {
		return err
	}
	expected, err := s.LastSequence(ctx, domain.CategoryLedger, domain.TrustAggregate)
	if err != nil {
		return err
	}
	var pub domain.PublicKey
	copy(pub[:], s.SigningKey())
	reason := "new log"
	if head > 0 {
		reason = fmt.Sprintf("upgrade of a log written before trust events: its first %d messages are trusted if signed by this key", head)
	}
	e := domain.Event{Type: domain.TypeLedgerGenesis, Schema: domain.SchemaOf(domain.TypeLedgerGenesis),
		Aggregate: domain.TrustAggregate, Version: 1, Time: time.Now().UTC(), Actor: "system",
		Data: domain.LedgerGenesis{Keys: []domain.PublicKey{pub}, Reason: reason}}
	seqs, err := s.Append(ctx, Pending{Event: e, ExpectedSeq: expected})
	if domain.KindOf(err) == domain.Conflict {
		return s.refreshTrust(ctx, 0) // another writer's genesis (or junk): the fold decides
	}
	if err != nil {
		return fmt.Errorf("append the genesis: %w", err)
	}
	if err := s.refreshTrust(ctx, seqs[0]); err != nil {
		return err
	}
	s.genesisNote = fmt.Sprintf("appended the log's genesis at sequence %d naming ledger key %s (%s)", seqs[0], s.signerID, reason)
	return nil
}

// AddLedgerKey appends a ledger.key_added event trusting pub from its
// position on, signed with the store's key, and returns its sequence.
// Errors: Invalid when the rules refuse it (already trusted, retired
// before), Conflict on a concurrent trust change, Unavailable.
func (s *Store) AddLedgerKey(ctx context.Context, pub ed25519.PublicKey, reason, actor string) (uint64, error) {
	if len(pub) != ed25519.PublicKeySize {
		return 0, domain.Errorf(domain.Invalid, "not an Ed25519 public key")
	}
	var k domain.PublicKey
	copy(k[:], pub)
	return s.appendTrust(ctx, actor, func(t *domain.Trust) (domain.EventData, error) {
		return domain.LedgerKeyAdded{Key: k, Reason: reason}, t.CheckAdd(k)
	})
}

// RetireLedgerKey appends a ledger.key_retired event for the trusted key
// with id (see KeyID), signed with the store's key, and returns its
// sequence. Errors: NotFound for no such trusted key, Invalid for the last
// trusted key, Conflict, Unavailable.
func (s *Store) RetireLedgerKey(ctx context.Context, id, reason, actor string) (uint64, error) {
	return s.appendTrust(ctx, actor, func(t *domain.Trust) (domain.EventData, error) {
		for _, k := range t.Keys() {
			if k.ID == id && k.Retired == 0 {
				return domain.LedgerKeyRetired{Key: k.Key, Reason: reason}, t.CheckRetire(k.Key)
			}
		}
		return nil, domain.Errorf(domain.NotFound, "no trusted ledger key %s", id)
	})
}

func (s *Store) appendTrust(ctx context.Context, actor string, decide func(*domain.Trust) (domain.EventData, error)) (uint64, error) {
	if s.signer == nil {
		return 0, domain.Errorf(domain.Invalid, "a read-only store signs nothing")
	}
	if err := s.refreshTrust(ctx, 0); err != nil {
		return 0, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	expected, err := s.LastSequence(ctx, domain.CategoryLedger, domain.TrustAggregate)
	if err != nil {
		return 0, err
	}
	v := &s.trust
	v.mu.RLock()
	if expected > v.read {
		v.mu.RUnlock()
		return 0, domain.Errorf(domain.Conflict, "concurrent change of the ledger keys, try again")
	}
	data, err := decide(&v.fold)
	_, trusted := v.keyAt(s.signerID, v.covered+1)
	version, prev := v.fold.Version()+1, v.fold.Last()
	v.mu.RUnlock()
	if err != nil {
		if domain.KindOf(err) == domain.Internal {
			err = domain.Wrap(domain.Invalid, err, err.Error())
		}
		return 0, err
	}
	if !trusted {
		return 0, domain.Errorf(domain.Invalid, "signing key %s is not trusted by the log", s.signerID)
	}
	e := domain.Event{Type: data.EventType(), Schema: domain.SchemaOf(data.EventType()), Aggregate: domain.TrustAggregate,
		Version: version, Time: time.Now().UTC(), Actor: actor, Prev: prev, Data: data}
	seqs, err := s.Append(ctx, Pending{Event: e, ExpectedSeq: expected})
	if err != nil {
		return 0, err
	}
	if err := s.refreshTrust(ctx, seqs[0]); err != nil {
		return seqs[0], domain.Wrap(domain.Unavailable, err, "trust event written but not read back")
	}
	v.mu.RLock()
	refusal := v.refused[seqs[0]]
	v.mu.RUnlock()
	if refusal != nil {
		return seqs[0], domain.Wrap(domain.Internal, refusal, "the log refused the trust event")
	}
	return seqs[0], nil
}

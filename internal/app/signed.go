package app

import (
	"time"

	"github.com/keyledger/keyledger/validator"
)

// SignedRequestsConfig tunes the checks of signed requests, on serve's
// /validate and on validation nodes alike.
type SignedRequestsConfig struct {
	// Window is how far a signature's created time may be from the node's
	// clock (zero: validator.DefaultSignatureWindow).
	Window time.Duration
	// ReplayCacheSize bounds the signed requests remembered to refuse
	// replays (zero: validator.DefaultReplayCacheSize).
	ReplayCacheSize int
	// ReplayCache is "local" (each node refuses the replays of what it
	// accepted) or "shared" (every node refuses what any accepted, through
	// a JetStream key-value bucket); empty means local.
	ReplayCache string
}

// options returns the validator options of c.
func (c SignedRequestsConfig) options() []validator.Option {
	var opts []validator.Option
	if c.Window != 0 {
		opts = append(opts, validator.WithSignatureWindow(c.Window))
	}
	if c.ReplayCacheSize != 0 {
		opts = append(opts, validator.WithReplayCacheSize(c.ReplayCacheSize))
	}
	if c.ReplayCache == "shared" {
		opts = append(opts, validator.WithSharedReplayCache())
	}
	return opts
}

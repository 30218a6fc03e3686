package main

import (
	"errors"
	"flag"
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

// signedFlags registers the flags of signed requests, which set c.
func signedFlags(fs *flag.FlagSet, c *SignedRequestsConfig) {
	fs.DurationVar(&c.Window, "signature-window", validator.DefaultSignatureWindow,
		"how far a signed request's created time may be from this node's clock, either way")
	fs.IntVar(&c.ReplayCacheSize, "replay-cache-size", validator.DefaultReplayCacheSize,
		"most signed requests remembered at once to refuse replays (about 40 bytes each); when full, signed requests are refused")
	fs.Func("replay-cache", `"local": each node refuses replays of the signed requests it accepted; "shared": every node refuses what any node accepted, through a JetStream key-value bucket (one NATS round trip per signed request) (default local)`,
		func(s string) error {
			if s != "local" && s != "shared" {
				return errors.New(`want "local" or "shared"`)
			}
			c.ReplayCache = s
			return nil
		})
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

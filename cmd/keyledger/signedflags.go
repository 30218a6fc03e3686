package main

import (
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
}

func (c *SignedRequestsConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Window, "signature-window", validator.DefaultSignatureWindow,
		"how far a signed request's created time may be from this node's clock, either way")
	fs.IntVar(&c.ReplayCacheSize, "replay-cache-size", validator.DefaultReplayCacheSize,
		"most signed requests remembered at once to refuse replays (about 40 bytes each); when full, signed requests are refused")
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
	return opts
}

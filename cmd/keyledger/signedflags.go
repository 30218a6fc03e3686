package main

import (
	"errors"
	"flag"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/validator"
)

// signedFlags registers the flags of signed requests, which set c.
func signedFlags(fs *flag.FlagSet, c *app.SignedRequestsConfig) {
	fs.DurationVar(&c.Window, "signature-window", validator.DefaultSignatureWindow,
		"how far a signed request's created time may be from this node's clock, either way")
	fs.IntVar(&c.ReplayCacheSize, "replay-cache-size", validator.DefaultReplayCacheSize,
		"most signed requests remembered at once to refuse replays (about 40 bytes each); when full, signed requests are refused")
	fs.Func("replay-cache", "replay cache `mode`: \"local\", each node refuses replays of the signed requests it accepted; \"shared\", every node refuses what any node accepted, through a JetStream key-value bucket (one NATS round trip per signed request) (default local)",
		func(s string) error {
			if s != "local" && s != "shared" {
				return errors.New(`want "local" or "shared"`)
			}
			c.ReplayCache = s
			return nil
		})
}

package main

import (
	"flag"

	"github.com/keyledger/keyledger/internal/app"
)

// httpsFlags registers the HTTPS flags, which set c; --tls-client-ca only
// with clientCA.
func httpsFlags(fs *flag.FlagSet, c *app.HTTPSConfig, clientCA bool) {
	fs.StringVar(&c.CertFile, "tls-cert", "", "serve HTTPS with this PEM certificate (chain); re-read when the file changes or on SIGHUP")
	fs.StringVar(&c.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&c.SelfSigned, "tls-self-signed", false, "serve HTTPS with an in-memory self-signed certificate (development); its SHA-256 fingerprint is logged")
	if clientCA {
		fs.StringVar(&c.ClientCA, "tls-client-ca", "", "require client certificates signed by a CA in this PEM file")
	}
}

// natsClientFlags registers the flags of the NATS client, which set c.
func natsClientFlags(fs *flag.FlagSet, c *app.NATSClientConfig) {
	fs.StringVar(&c.CA, "nats-ca", "", "PEM CA bundle that signs the NATS servers' certificates (enables TLS to NATS)")
	fs.StringVar(&c.Cert, "nats-cert", "", "PEM client certificate for mutual TLS with NATS")
	fs.StringVar(&c.Key, "nats-key", "", "PEM private key of --nats-cert")
	fs.StringVar(&c.Creds, "nats-creds", "", "NATS credentials file (user JWT and NKey seed)")
}

// embeddedTLSFlags registers the TLS flags of the embedded NATS server,
// which set c.
func embeddedTLSFlags(fs *flag.FlagSet, c *app.EmbeddedTLSConfig) {
	fs.StringVar(&c.CertFile, "nats-tls-cert", "", "the embedded NATS server listens with TLS using this PEM certificate")
	fs.StringVar(&c.KeyFile, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
	fs.StringVar(&c.ClientCA, "nats-tls-client-ca", "", "the embedded NATS server requires client certificates signed by a CA in this PEM file (mutual TLS)")
}

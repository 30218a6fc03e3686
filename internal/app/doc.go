// Package app is keyledger's composition root: it wires NATS, the event
// store, the projections, the use cases and the HTTP API into the programs
// the binary runs, Server (`keyledger serve`) and Node (`keyledger
// validator`), and opens the ledger's core (OpenLedger) for the admin
// commands, tests and benchmarks. cmd/keyledger maps flags and environment
// onto the configurations here; tests drive Server and Node directly.
package app

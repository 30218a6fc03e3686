// Package api holds the OpenAPI 3.1 document of keyledger's HTTP API,
// embedded in the binary so that `keyledger serve` can serve it at
// GET /openapi.json.
//
// openapi.json is written by hand. The tests in cmd/keyledger
// (openapi_test.go) keep it honest: every route the server registers must
// be in it and every route in it must exist, and the JSON bodies the
// running server sends must validate against its schemas.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document (JSON) of the HTTP API of
// `keyledger serve`. Callers must not modify it.
//
//go:embed openapi.json
var OpenAPI []byte

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keyledger/keyledger/client"
)

// runSign prints the headers that sign one request.
func runSign(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sign")
	apiKey := fs.String("key", "", "the API key (ak_...)")
	secretFile := fs.String("secret-file", "", "read the secret from this file instead of KEYLEDGER_API_SECRET")
	method := fs.String("X", http.MethodGet, "request `method`")
	data := fs.String("data", "", "request body, as given")
	dataFile := fs.String("data-file", "", "read the request body from this file, byte for byte")
	contentType := fs.String("content-type", "", "Content-Type of the body (default application/json when there is a body)")
	validity := fs.Duration("validity", time.Minute, "how long the signature stays valid (servers accept at most 5m by default)")
	// The URL may come before or after the flags.
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	envErr := applyEnv(fs)
	if err := parseCommandLine(fs, args); err != nil {
		return err
	}
	if envErr != nil {
		return envErr
	}
	rest := fs.Args()
	if target == "" && len(rest) > 0 {
		target, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 || target == "" {
		return usageError{errors.New("give exactly one URL (see keyledger sign -h)")}
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Errorf("URL must be absolute http or https, like https://api.example.com/path")}
	}
	if *data != "" && *dataFile != "" {
		return usageError{errors.New("give --data or --data-file, not both")}
	}
	if *validity < time.Second {
		return usageError{errors.New("--validity must be at least 1s")}
	}
	secret, err := readSecret(*secretFile)
	if err != nil {
		return err
	}
	body := []byte(*data)
	if *dataFile != "" {
		if body, err = os.ReadFile(*dataFile); err != nil {
			return err
		}
	}
	signer, err := client.NewSigner(*apiKey, secret, nil)
	if err != nil {
		return usageError{err}
	}
	req, err := http.NewRequest(strings.ToUpper(*method), u.String(), bytes.NewReader(body))
	if err != nil {
		return usageError{err}
	}
	ct := *contentType
	if ct == "" && len(body) > 0 {
		ct = "application/json"
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if err := signer.WithValidity(*validity).SignRequest(req, body); err != nil {
		return err
	}
	for _, name := range []string{"X-Api-Key", "Content-Type", "Content-Digest", "Signature-Input", "Signature"} {
		for _, v := range req.Header.Values(name) {
			fmt.Fprintf(stdout, "%s: %s\n", name, v)
		}
	}
	return nil
}

// readSecret reads an API secret from a file or KEYLEDGER_API_SECRET,
// trimmed of surrounding white space.
func readSecret(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	if s, ok := os.LookupEnv("KEYLEDGER_API_SECRET"); ok {
		return strings.TrimSpace(s), nil
	}
	return "", usageError{errors.New("no secret: set KEYLEDGER_API_SECRET or give --secret-file")}
}

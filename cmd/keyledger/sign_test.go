package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestSign_Usage(t *testing.T) {
	const key = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
	const secret = "sk_00000000000000000000000000000000000000000004LPos6"
	tests := []struct {
		name   string
		args   []string
		secret string // KEYLEDGER_API_SECRET; "" unset
		code   int
		want   string // in stderr
	}{
		{"NoSecret", []string{"--key", key, "https://api.example.com/"}, "", 2, "KEYLEDGER_API_SECRET"},
		{"NoURL", []string{"--key", key}, secret, 2, "exactly one URL"},
		{"RelativeURL", []string{"--key", key, "/orders"}, secret, 2, "absolute"},
		{"BothBodies", []string{"--key", key, "--data", "x", "--data-file", "f", "https://a.example/"}, secret, 2, "not both"},
		{"BadKey", []string{"--key", "ak_nope", "https://a.example/"}, secret, 2, "malformed API key"},
		{"BadSecret", []string{"--key", key, "https://a.example/"}, "sk_wrong", 2, "malformed secret"},
		{"OK", []string{"-X", "POST", "--key", key, "--data", `{"a":1}`, "https://a.example/x?y=1"}, secret, 0, ""},
		{"URLFirst", []string{"https://a.example/x", "--key", key}, secret, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.secret != "" {
				t.Setenv("KEYLEDGER_API_SECRET", tc.secret)
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"sign"}, tc.args...), &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("got exit %d, stderr %q, want %d and %q", code, errOut.String(), tc.code, tc.want)
			}
			if strings.Contains(out.String()+errOut.String(), "sk_") {
				t.Errorf("the secret appears in the output")
			}
			if tc.code == 0 {
				for _, h := range []string{"X-Api-Key: ", "Signature-Input: sig1=", "Signature: sig1=:"} {
					if !strings.Contains(out.String(), h) {
						t.Errorf("output %q lacks %q", out.String(), h)
					}
				}
			}
		})
	}
}

package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/client"
)

// A user signs in, creates a key and checks it; another service then calls
// a protected API with the key through client.Transport.
func Example() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:8080", client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Register(ctx, "alice@example.com", "correct horse battery staple"); client.IsConflict(err) {
		// Already registered: sign in below.
	} else if err != nil {
		log.Fatal(err)
	}
	session, err := c.Login(ctx, "alice@example.com", "correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	alice := c.WithSession(session.Token)

	expires := time.Now().Add(30 * 24 * time.Hour)
	key, err := alice.CreateKey(ctx, client.CreateKeyRequest{Name: "billing", ExpiresAt: &expires})
	if err != nil {
		log.Fatal(err)
	}
	id, err := alice.Validate(ctx, key.APIKey, key.Secret, client.StyleAuthorization)
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		log.Fatalf("refused: %d %s", apiErr.Status, apiErr.Code)
	}
	fmt.Println("key belongs to", id.UserID)

	for k, err := range alice.AllKeys(ctx, client.ListOptions{Limit: 100}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(k.APIKey, k.Name, k.Status)
	}

	// Any service behind keyledger validation:
	protected := &http.Client{Transport: &client.Transport{APIKey: key.APIKey, Secret: key.Secret}}
	resp, err := protected.Get("https://billing.internal.example/invoices")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
}

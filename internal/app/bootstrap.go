package app

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

// ReadAdminPublicKey reads an admin public key file as `keyledger admin
// keygen` writes it: the key's 64 hex digits on the first line that is not
// a comment (#).
func ReadAdminPublicKey(path string) (domain.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return domain.PublicKey{}, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var k domain.PublicKey
		if err := k.UnmarshalText([]byte(line)); err != nil || k.IsZero() {
			return domain.PublicKey{}, fmt.Errorf("%s: not an admin public key (64 hex digits)", path)
		}
		return k, nil
	}
	return domain.PublicKey{}, fmt.Errorf("%s: no admin public key in it", path)
}

// bootstrap enrolls the BootstrapAdmin key when no admin key is enrolled
// yet, and says so; once admins exist it only logs that it ignored it.
func (s *Server) bootstrap(ctx context.Context) {
	if s.bootstrapKey.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := ledger.BootstrapAdmin{Name: s.Config.BootstrapAdminName, Key: s.bootstrapKey}
	enrolled, err := s.service.BootstrapAdmin(ctx, cmd)
	switch {
	case err != nil:
		s.Logger.Error("bootstrap admin failed", "admin", cmd.Name, "key_id", domain.AdminKeyID(cmd.Key), "err", err)
	case enrolled:
		s.Logger.Warn("bootstrap admin enrolled", "admin", cmd.Name, "key_id", domain.AdminKeyID(cmd.Key))
	default:
		s.Logger.Info("--bootstrap-admin ignored: admin keys are enrolled already", "key_id", domain.AdminKeyID(cmd.Key))
	}
}

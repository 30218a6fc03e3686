package main

import (
	"log/slog"
)

// discardLogger is the logger of commands whose logs nobody reads.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

package main

import (
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
)

// logger is set up by Before from --log-level; it writes to the app's stderr.
var logger = slog.New(slog.DiscardHandler)

// setUpLogging reads --log-level wherever it was given (globalString).
func setUpLogging(cCtx *cli.Context) error {
	var level slog.Level
	name := globalString(cCtx, flagLogLevel)
	if err := level.UnmarshalText([]byte(strings.ToUpper(name))); err != nil {
		return usageError(cCtx, "--log-level %q: %v", name, err)
	}
	logger = slog.New(slog.NewTextHandler(cCtx.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	return nil
}

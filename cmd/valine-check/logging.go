package main

import (
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
)

var globalFlags = []cli.Flag{
	&cli.StringFlag{Name: "log-level", Value: "warn", EnvVars: []string{"VALINE_LOG_LEVEL"},
		Usage: "diagnostic log level on stderr: debug, info, warn or error"},
}

// logger is set up by Before from --log-level; it writes to the app's stderr.
var logger = slog.New(slog.DiscardHandler)

func setUpLogging(cCtx *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(cCtx.String("log-level")))); err != nil {
		return usageError(cCtx, "--log-level %q: %v", cCtx.String("log-level"), err)
	}
	logger = slog.New(slog.NewTextHandler(cCtx.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	return nil
}

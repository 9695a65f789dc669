package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/internal/progress"
)

// The global flags, accepted before the command (valine-check --quiet
// status) and after it at any depth (valine-check token inspect -o json).
const (
	flagLogLevel = "log-level"
	flagQuiet    = "quiet"
	flagOutput   = "output"
)

const globalCategory = "Global"

// globalFlags are the app's: each reads its environment variable.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagLogLevel, Value: "warn", EnvVars: []string{"VALINE_LOG_LEVEL"}, Category: globalCategory,
			Usage: "diagnostic log level on stderr: debug, info, warn or error"},
		&cli.BoolFlag{Name: flagQuiet, Aliases: []string{"q"}, EnvVars: []string{"VALINE_QUIET"}, Category: globalCategory,
			Usage: "no progress lines on stderr (the one line each wait longer than a second prints)"},
		&cli.StringFlag{Name: flagOutput, Aliases: []string{"o"}, Value: "text", EnvVars: []string{"VALINE_OUTPUT"}, Category: globalCategory,
			Usage: "format on stdout: text or json (junit too for a check report); each command's --output says which it takes"},
	}
}

// commandGlobalFlags are the copies every command carries, so that a global
// flag may follow the command: urfave/cli reads an app's flags only before
// it. A copy has no environment variable, so that it counts as set only
// when given on the command line (see globalString); has names the flags
// the command defines itself (its own --output, naming its formats), which
// it does not get again.
func commandGlobalFlags(has map[string]bool) []cli.Flag {
	var out []cli.Flag
	for _, f := range globalFlags() {
		if has[f.Names()[0]] {
			continue
		}
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Usage += " (default from " + f.EnvVars[0] + ")"
			f.EnvVars = nil
		case *cli.BoolFlag:
			f.Usage += " (default from " + f.EnvVars[0] + ")"
			f.EnvVars = nil
		}
		out = append(out, f)
	}
	return out
}

// addGlobalFlags gives c and its subcommands, at any depth, the global
// flags they do not define.
func addGlobalFlags(c *cli.Command) {
	has := map[string]bool{}
	for _, f := range c.Flags {
		has[f.Names()[0]] = true
	}
	c.Flags = append(c.Flags, commandGlobalFlags(has)...)
	for _, sub := range c.Subcommands {
		addGlobalFlags(sub)
	}
}

// globalString reads a global flag as the user meant it: the one given
// nearest the end of the command line wins (after the subcommand over
// before it), then the environment variable, then the default.
func globalString(cCtx *cli.Context, name string) string {
	for _, c := range cCtx.Lineage() {
		if c.IsSet(name) {
			return c.String(name)
		}
	}
	return cCtx.String(name)
}

// globalBool is globalString for a boolean flag.
func globalBool(cCtx *cli.Context, name string) bool {
	for _, c := range cCtx.Lineage() {
		if c.IsSet(name) {
			return c.Bool(name)
		}
	}
	return cCtx.Bool(name)
}

// setUpGlobals applies the global flags (the log level) as the command
// line gives them. The app and a command with subcommands leave them to
// the command that follows, whose Before reads them once its own flags are
// parsed: a value after it replaces one before.
func setUpGlobals(cCtx *cli.Context) error {
	if first := cCtx.Args().First(); first != "" && cCtx.Command != nil && cCtx.Command.Command(first) != nil {
		return nil
	}
	return setUpLogging(cCtx)
}

// stepWriter is where a change's steps are told (rotate.Engine.Progress):
// stdout with the text report they belong to, stderr when stdout carries a
// JSON or JUnit document, which must stay one valid document.
func stepWriter(cCtx *cli.Context) io.Writer {
	if globalString(cCtx, flagOutput) == "text" {
		return cCtx.App.Writer
	}
	return cCtx.App.ErrWriter
}

// waitLineMu keeps two waits' lines whole when they are told at once.
var waitLineMu sync.Mutex

// waitLines prints, on stderr, one line for each wait that lasts longer
// than a second (progress.Func), unless --quiet: what it waits for and
// until when at the latest.
func waitLines(cCtx *cli.Context) progress.Func {
	if globalBool(cCtx, flagQuiet) {
		return nil
	}
	w := cCtx.App.ErrWriter
	return func(what string, until time.Time) {
		waitLineMu.Lock()
		defer waitLineMu.Unlock()
		fmt.Fprintf(w, "valine-check: waiting for %s (until %s)\n", what, until.UTC().Format("15:04:05Z"))
	}
}

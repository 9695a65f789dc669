package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// run is main without the process: it returns the exit code, so nothing
// below it calls os.Exit.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var bad *badInput
	if errors.As(err, &bad) {
		fmt.Fprintf(stderr, "valine-check: %s\nRun '%s --help' for usage.\n", bad.msg, bad.command)
		return exitUsage
	}
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(stderr, "valine-check: %s\n", msg)
		}
		return exit.ExitCode()
	}
	fmt.Fprintf(stderr, "valine-check: %v\n", err)
	return exitUsage
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	version := versionOf(readBuildInfo())
	app := &cli.App{
		Name:    "valine-check",
		Version: version.String(), // --version prints "valine-check version <this>"
		Usage:   "rotate Project Valine's JWT secret and prove the rotation worked",
		Description: "Exit codes: 0 all checks passed, 1 a check failed, 2 bad usage or configuration,\n" +
			"3 the environment failed (network, AWS). Secrets and tokens are read from\n" +
			"environment variables or standard input, never from arguments, and are\n" +
			"printed only as fingerprints (sha256:xxxxxxxx).",
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags:     globalFlags(),
		Before:    setUpGlobals,
		Action: func(cCtx *cli.Context) error {
			if cCtx.NArg() > 0 {
				return usageError(cCtx, "unknown command %q", cCtx.Args().First())
			}
			return cli.ShowAppHelp(cCtx)
		},
		Commands: []*cli.Command{
			afterRotationCommand(),
			rotateCommand(),
			finalizeCommand(),
			rollbackCommand(),
			statusCommand(),
			preflightCommand(),
			sandboxCommand(),
			tokenCommand(),
			insightsCommand(),
			alarmsCommand(),
			probeCommand(),
			versionCommand(version),
			completionCommand(),
		},
		// Errors come back to run, which owns exit codes; the library must not exit.
		ExitErrHandler:       func(*cli.Context, error) {},
		EnableBashCompletion: true,
		Suggest:              true,
	}
	app.OnUsageError = onUsageError
	for _, c := range app.Commands {
		addGlobalFlags(c)
		setUsageHandlers(c)
	}
	return app
}

// setUsageHandlers gives every command, at any depth, the same handling of
// bad input: a flag that does not parse, a flag value that makes no sense
// (the global flags wherever given, then checkFlagValues, before the
// command does anything) and an unknown subcommand are each one line and
// exit 2. The commands are built afresh for each app (their constructors),
// so each is wrapped exactly once.
func setUsageHandlers(c *cli.Command) {
	c.OnUsageError = onUsageError
	before := c.Before
	c.Before = func(cCtx *cli.Context) error {
		if err := setUpGlobals(cCtx); err != nil {
			return err
		}
		if err := checkFlagValues(cCtx); err != nil {
			return err
		}
		if before != nil {
			return before(cCtx)
		}
		return nil
	}
	if len(c.Subcommands) > 0 && c.Action == nil {
		c.Action = subcommandAction
	}
	for _, sub := range c.Subcommands {
		setUsageHandlers(sub)
	}
}

// subcommandAction is the action of a command that only groups others: no
// argument shows its help; anything else is not one of its commands.
func subcommandAction(cCtx *cli.Context) error {
	if cCtx.NArg() > 0 {
		return usageError(cCtx, "unknown command %q", cCtx.Args().First())
	}
	return cli.ShowSubcommandHelp(cCtx)
}

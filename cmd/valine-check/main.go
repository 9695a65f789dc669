// Command valine-check rotates the secret that signs Project Valine's JWTs
// and proves, with probes, that the rotation worked. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit codes. CI gates on them, so they are part of the interface.
const (
	exitOK       = 0 // every check passed (warnings and skips allowed)
	exitFailed   = 1 // a check failed: the deployment answered wrongly
	exitUsage    = 2 // bad flags, arguments or configuration
	exitEnvError = 3 // the environment failed: network, AWS, timeouts
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code, so nothing
// below it calls os.Exit.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
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
	app := &cli.App{
		Name:  "valine-check",
		Usage: "rotate Project Valine's JWT secret and prove the rotation worked",
		Description: "Exit codes: 0 all checks passed, 1 a check failed, 2 bad usage or configuration,\n" +
			"3 the environment failed (network, AWS). Secrets and tokens are read from\n" +
			"environment variables or standard input, never from arguments, and are\n" +
			"printed only as fingerprints (sha256:xxxxxxxx).",
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags:     globalFlags,
		Before:    setUpLogging,
		Action: func(cCtx *cli.Context) error {
			if cCtx.NArg() > 0 {
				return usageError(cCtx, "unknown command %q", cCtx.Args().First())
			}
			return cli.ShowAppHelp(cCtx)
		},
		Commands: []*cli.Command{
			afterRotationCommand,
			rotateCommand,
			finalizeCommand,
			rollbackCommand,
			statusCommand,
			preflightCommand,
			sandboxCommand,
			tokenCommand,
			insightsCommand,
			alarmsCommand,
			probeCommand,
		},
		// Errors come back to run, which owns exit codes; the library must not exit.
		ExitErrHandler:       func(*cli.Context, error) {},
		EnableBashCompletion: true,
		Suggest:              true,
	}
	app.OnUsageError = onUsageError
	for _, c := range app.Commands {
		setUsageHandlers(c)
	}
	return app
}

func setUsageHandlers(c *cli.Command) {
	c.OnUsageError = onUsageError
	for _, sub := range c.Subcommands {
		setUsageHandlers(sub)
	}
}

// onUsageError turns a flag parse error into exit code 2, with help.
func onUsageError(cCtx *cli.Context, err error, _ bool) error {
	return usageError(cCtx, "%v", err)
}

// usageError prints the command's help to stderr and returns exit code 2
// with the message.
func usageError(cCtx *cli.Context, format string, args ...any) error {
	w := cCtx.App.ErrWriter
	if cCtx.Command != nil && cCtx.Command.Name != "" {
		cli.HelpPrinter(w, cli.CommandHelpTemplate, cCtx.Command)
	} else {
		cli.HelpPrinter(w, cli.AppHelpTemplate, cCtx.App)
	}
	fmt.Fprintln(w)
	return cli.Exit(fmt.Sprintf(format, args...), exitUsage)
}

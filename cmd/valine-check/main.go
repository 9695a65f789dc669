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
	"reflect"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Exit codes. CI gates on them, so they are part of the interface.
const (
	exitOK       = 0 // every check passed (warnings and skips allowed)
	exitFailed   = 1 // a check failed: the deployment answered wrongly
	exitUsage    = 2 // bad flags, arguments or configuration
	exitEnvError = 3 // the environment failed: network, AWS, timeouts
	// exitInterrupted is the shell's code for a run stopped by SIGINT
	// (128+2): the journal says where it stopped.
	exitInterrupted = 130
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

// setUsageHandlers gives every command, at any depth, the same handling of
// bad input: a flag that does not parse, a flag value that makes no sense
// (checkFlagValues, before the command does anything) and an unknown
// subcommand are each one line and exit 2.
func setUsageHandlers(c *cli.Command) {
	c.OnUsageError = onUsageError
	switch before := c.Before; {
	case before == nil, reflect.ValueOf(before).Pointer() == reflect.ValueOf(checkFlagValues).Pointer():
		c.Before = checkFlagValues // newApp may run more than once in a process
	default:
		c.Before = func(cCtx *cli.Context) error {
			if err := checkFlagValues(cCtx); err != nil {
				return err
			}
			return before(cCtx)
		}
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

// onUsageError turns a flag parse error into exit code 2.
func onUsageError(cCtx *cli.Context, err error, _ bool) error {
	return usageError(cCtx, "%v", err)
}

// badInput is a usage error: run prints it as one line, then where the
// help is, and exits 2.
type badInput struct {
	msg     string
	command string // "valine-check token forge"
}

func (e *badInput) Error() string { return e.msg }

// ExitCode makes a badInput a cli.ExitCoder, so the library passes it on.
func (e *badInput) ExitCode() int { return exitUsage }

// usageError is bad input: exit 2 with the message on one line (the help
// is one --help away, not printed: a screen of flags buries the message).
func usageError(cCtx *cli.Context, format string, args ...any) error {
	msg := strings.Join(strings.FieldsFunc(fmt.Sprintf(format, args...), func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
	return &badInput{msg: msg, command: commandPath(cCtx)}
}

// commandPath is the command's name as typed: "valine-check token forge".
func commandPath(cCtx *cli.Context) string {
	var names []string
	for _, c := range cCtx.Lineage() {
		if c.Command != nil && c.Command.Name != "" {
			names = append([]string{c.Command.Name}, names...)
		}
	}
	if len(names) == 0 || names[0] != cCtx.App.Name {
		names = append([]string{cCtx.App.Name}, names...)
	}
	return strings.Join(names, " ")
}

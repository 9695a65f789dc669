package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/valine/valine-check/probes"
	"github.com/valine/valine-check/rotate"
)

// Exit codes. CI gates on them, so they are part of the interface.
const (
	exitOK       = 0 // every check passed (warnings and skips allowed)
	exitFailed   = 1 // a check failed: the deployment answered wrongly
	exitUsage    = 2 // bad flags, arguments or configuration
	exitEnvError = 3 // the environment failed: network, AWS, timeouts
	// exitChangesPending is `alarms plan --detailed-exitcode` finding
	// changes to make (terraform's 2, which means bad usage here).
	exitChangesPending = 4
	// exitInterrupted is the shell's code for a run stopped by SIGINT
	// (128+2): the journal says where it stopped.
	exitInterrupted = 130
)

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

// engineExit maps an engine error to the exit code a caller gates on.
func engineExit(err error) error {
	if err == nil {
		return nil
	}
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		return err
	}
	switch {
	case errors.Is(err, rotate.ErrVerificationFailed), errors.Is(err, rotate.ErrNoDualSecret), errors.Is(err, rotate.ErrDrift),
		errors.Is(err, rotate.ErrFindings), errors.Is(err, rotate.ErrFindingsReported), errors.Is(err, rotate.ErrStoreMismatch):
		return cli.Exit(err.Error(), exitFailed)
	case errors.Is(err, rotate.ErrInterrupted), errors.Is(err, context.Canceled):
		return cli.Exit(err.Error(), exitInterrupted)
	case errors.Is(err, rotate.ErrVerificationPending):
		return cli.Exit(err.Error(), exitEnvError)
	case errors.Is(err, rotate.ErrBaselineFailed), errors.Is(err, rotate.ErrNoSecondaryVar):
		return cli.Exit(err.Error(), exitUsage)
	case errors.Is(err, rotate.ErrGraceNotOver), errors.Is(err, rotate.ErrGraceInProgress), errors.Is(err, rotate.ErrNothingToRollBack),
		errors.Is(err, rotate.ErrLocked), errors.Is(err, rotate.ErrNoRotation),
		errors.Is(err, rotate.ErrEmptySecret), errors.Is(err, rotate.ErrShortSecret), errors.Is(err, rotate.ErrReusedSecret),
		errors.Is(err, rotate.ErrEmptyFleet), errors.Is(err, rotate.ErrEnvTooLarge),
		errors.Is(err, rotate.ErrSecretShape), errors.Is(err, rotate.ErrAuditUnwritable), errors.Is(err, rotate.ErrFleetOwned),
		errors.Is(err, rotate.ErrLockHolderAlive), errors.Is(err, rotate.ErrDeployDrift), errors.Is(err, rotate.ErrSourceMismatch),
		errors.Is(err, rotate.ErrInvalidSource), errors.Is(err, rotate.ErrNoStore):
		return cli.Exit(err.Error(), exitUsage)
	}
	return cli.Exit(err.Error(), exitEnvError)
}

func exitFor(rep probes.Report) error {
	var failed, errored []string
	for _, r := range rep.Failed() {
		if r.Outcome == probes.Fail {
			failed = append(failed, r.Name)
		} else {
			errored = append(errored, r.Name+": "+r.Reason)
		}
	}
	switch rep.Status() {
	case probes.Fail:
		return cli.Exit("failed: "+strings.Join(failed, ", "), exitFailed)
	case probes.Error:
		return cli.Exit("could not run every check (environment failure):\n  "+strings.Join(errored, "\n  "), exitEnvError)
	}
	return nil
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/probes/report"
)

// outputFlag is a command's own --output, naming the formats it takes
// (the first is the default). Its environment variable, VALINE_OUTPUT, is
// the global flag's (globalFlags): one for every command.
func outputFlag(formats ...string) cli.Flag {
	return &cli.StringFlag{Name: flagOutput, Aliases: []string{"o"}, Value: formats[0], Category: outputCategory,
		Usage: "format on stdout: " + orList(formats) + " (default from VALINE_OUTPUT)"}
}

// outputFormat reads --output wherever it was given, else VALINE_OUTPUT
// (globalString); it must be one of formats. Checked before any work, so a
// typo costs nothing.
func outputFormat(cCtx *cli.Context, formats ...string) (string, error) {
	o := globalString(cCtx, flagOutput)
	for _, f := range formats {
		if o == f {
			return o, nil
		}
	}
	return "", usageError(cCtx, "--output %q: must be %s", o, orList(formats))
}

// reportFormat reads --output for a command that prints a check report
// (text, json or junit).
func reportFormat(cCtx *cli.Context) (report.Format, error) {
	f, err := outputFormat(cCtx, string(report.Text), string(report.JSON), string(report.JUnit))
	return report.Format(f), err
}

// orList joins items as a sentence does: "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// writeJSON writes v as indented JSON, the one way every command does; a
// failure to write is an environment error.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return cli.Exit(fmt.Sprintf("writing JSON: %v", err), exitEnvError)
	}
	return nil
}

// parseTime reads a time as every command takes one: a positive duration
// before now (1h, 30m) or an RFC 3339 time.
func parseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: give a positive duration (it counts back from now)", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (1h, 30m) nor an RFC 3339 time (2026-11-29T03:00:00Z)", s)
}

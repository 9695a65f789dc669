package main

import (
	"fmt"
	"math"
	"net/url"

	"github.com/urfave/cli/v2"
)

// flagRules say which values of a numeric flag make sense, by flag name,
// wherever the flag appears: a flag name means one thing in every command.
// checkFlagValues applies them before a command does anything, so a value
// that makes no sense is exit 2 and not, minutes later, a rotation with no
// grace period or a check with no time to run.
var flagRules = map[string]func(cCtx *cli.Context, name string) error{
	"check-timeout":   positiveDuration,
	"convergence":     positiveDuration,
	"grace":           positiveDuration,
	"compare-window":  positiveDuration,
	"deadline":        positiveDuration,
	"ingestion-wait":  nonNegativeDuration,
	"update-duration": nonNegativeDuration,

	"aws-max-attempts":  atLeastOne,
	"concurrency":       nonNegativeInt,
	"check-concurrency": atLeastOne,

	"max-failure-increase": nonNegativeNumber,
	"cache-ttl":            nonNegativeDuration,

	"source":   sourceRule,
	"delivery": deliveryRule,
}

// checkFlagValues is every command's Before: it applies flagRules to the
// command's own flags (a parent's were checked by the parent's Before).
func checkFlagValues(cCtx *cli.Context) error {
	if cCtx.Command == nil {
		return nil
	}
	for _, f := range cCtx.Command.Flags {
		name := f.Names()[0]
		rule, ok := flagRules[name]
		if !ok {
			continue
		}
		if err := rule(cCtx, name); err != nil {
			return usageError(cCtx, "--%s: %v", name, err)
		}
	}
	return nil
}

func positiveDuration(cCtx *cli.Context, name string) error {
	if d := cCtx.Duration(name); d <= 0 {
		return fmt.Errorf("%s: must be more than zero", d)
	}
	return nil
}

func nonNegativeDuration(cCtx *cli.Context, name string) error {
	if d := cCtx.Duration(name); d < 0 {
		return fmt.Errorf("%s: must not be negative", d)
	}
	return nil
}

func atLeastOne(cCtx *cli.Context, name string) error {
	if n := cCtx.Int(name); n < 1 {
		return fmt.Errorf("%d: must be at least 1", n)
	}
	return nil
}

func nonNegativeInt(cCtx *cli.Context, name string) error {
	if n := cCtx.Int(name); n < 0 {
		return fmt.Errorf("%d: must not be negative", n)
	}
	return nil
}

func nonNegativeNumber(cCtx *cli.Context, name string) error {
	if v := cCtx.Float64(name); math.IsNaN(v) || v < 0 {
		return fmt.Errorf("%v: must be a number, zero or more", v)
	}
	return nil
}

// checkAPIURL accepts an http or https URL with a host: anything else would
// only fail later, as an unreachable API (exit 3) instead of bad input.
// The URL is shown without its password, if it has one.
func checkAPIURL(cCtx *cli.Context) error {
	raw := cCtx.String("api-url")
	u, err := url.Parse(raw)
	if err != nil {
		return usageError(cCtx, "--api-url: not a URL (want http:// or https:// and a host)")
	}
	shown := raw
	if u.User != nil {
		shown = u.Redacted()
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return usageError(cCtx, "--api-url %q: the scheme must be http or https", shown)
	case u.Hostname() == "":
		return usageError(cCtx, "--api-url %q: no host", shown)
	}
	return nil
}

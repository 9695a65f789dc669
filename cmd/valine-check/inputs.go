package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/probes"
)

// Secret-bearing inputs never come from arguments (they would show in ps and
// shell history): each is read from its environment variable or, with
// --env-stdin, from KEY=VALUE lines on standard input.
const (
	envProbePassword = "VALINE_PROBE_PASSWORD"
	envOldSecret     = "VALINE_OLD_SECRET"
	envSecret        = "VALINE_SECRET"
	envOldToken      = "VALINE_OLD_TOKEN"
	envOldRefresh    = "VALINE_OLD_REFRESH_TOKEN"
	envToken         = "VALINE_TOKEN"
	envNewSecret     = "VALINE_NEW_SECRET"
)

var secretEnvNames = []string{envProbePassword, envOldSecret, envSecret, envOldToken, envOldRefresh, envToken, envNewSecret}

var envStdinFlag = &cli.BoolFlag{Name: "env-stdin",
	Usage: "read secret inputs as KEY=VALUE lines from standard input (keys: " + strings.Join(secretEnvNames, ", ") + ")"}

// secretInputs are the secret-bearing inputs of a command, typed so that
// they print as fingerprints.
type secretInputs struct {
	values map[string]string
}

// readSecretInputs takes the secret variables from the environment, then,
// with --env-stdin, from standard input (which wins).
func readSecretInputs(cCtx *cli.Context) (secretInputs, error) {
	in := secretInputs{values: map[string]string{}}
	for _, k := range secretEnvNames {
		if v, ok := os.LookupEnv(k); ok {
			in.values[k] = v
		}
	}
	if cCtx.Bool("env-stdin") {
		fromStdin, err := parseEnvLines(cCtx.App.Reader)
		if err != nil {
			return in, usageError(cCtx, "--env-stdin: %v", err)
		}
		for k, v := range fromStdin {
			in.values[k] = v
		}
	}
	return in, nil
}

func (in secretInputs) secret(name string) probes.Secret { return probes.NewSecret(in.values[name]) }
func (in secretInputs) token(name string) probes.Token   { return probes.NewToken(in.values[name]) }

// parseEnvLines reads KEY=VALUE lines; blank lines and # comments are
// skipped. Errors name the line number and key, never a value.
func parseEnvLines(r io.Reader) (map[string]string, error) {
	allowed := map[string]bool{}
	for _, k := range secretEnvNames {
		allowed[k] = true
	}
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			return nil, fmt.Errorf("line %d is not KEY=VALUE", n)
		}
		k = strings.TrimSpace(k)
		if !allowed[k] {
			return nil, fmt.Errorf("line %d: unknown key %q (known: %s)", n, k, strings.Join(secretEnvNames, ", "))
		}
		out[k] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	return out, nil
}

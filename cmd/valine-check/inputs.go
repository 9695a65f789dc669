package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/valine/valine-check/internal/secret"
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

func (in secretInputs) secret(name string) secret.Secret { return secret.NewSecret(in.values[name]) }

// redactor holds every secret input's value: nothing quoted from outside
// (an API's answer, a log line) may carry one into the output.
func (in secretInputs) redactor() *secret.Redactor {
	r := secret.NewRedactor()
	for _, v := range in.values {
		r.Add(v)
	}
	return r
}
func (in secretInputs) token(name string) secret.Token { return secret.NewToken(in.values[name]) }

// parseEnvLines reads KEY=VALUE lines; blank lines and # comments are
// skipped. An error names the line by its number and never shows its text:
// a secret pasted on its own ("c2VjcmV0...=") or a typo ("KEY value=") would
// be the text. A key given twice is an error (which value was meant?) naming
// the key, one of the known names, and both lines.
func parseEnvLines(r io.Reader) (map[string]string, error) {
	allowed := map[string]bool{}
	for _, k := range secretEnvNames {
		allowed[k] = true
	}
	out := map[string]string{}
	seen := map[string]int{} // key → the line it was first given on
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			return nil, fmt.Errorf("line %d is not KEY=VALUE (the line is not shown: it may hold a secret)", n)
		}
		k = strings.TrimSpace(k)
		if !allowed[k] {
			return nil, fmt.Errorf("line %d: the key is not one of %s (the line is not shown: it may hold a secret)", n, strings.Join(secretEnvNames, ", "))
		}
		if first, dup := seen[k]; dup {
			return nil, fmt.Errorf("%s is given twice, on lines %d and %d", k, first, n)
		}
		seen[k] = n
		out[k] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	return out, nil
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/urfave/cli/v2"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/probes"
)

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "inspect, forge and attribute JWTs without printing them",
		Description: `Tokens are read from VALINE_TOKEN, from --env-stdin, or else as the first line of
standard input; secrets from VALINE_SECRET / VALINE_OLD_SECRET or --env-stdin. Nothing here
prints a token or a secret: only their fingerprints.`,
		Subcommands: []*cli.Command{tokenInspectCommand(), tokenForgeCommand(), tokenWhichCommand()},
	}
}

func tokenInspectCommand() *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "show a token's header, claims and expiry (unverified)",
		Flags: []cli.Flag{envStdinFlag, outputFlag("text", "json")},
		Action: func(cCtx *cli.Context) error {
			output, err := outputFormat(cCtx, "text", "json")
			if err != nil {
				return err
			}
			tok, _, err := tokenInput(cCtx)
			if err != nil {
				return err
			}
			in, err := probes.Inspect(tok, time.Now())
			if err != nil {
				return usageError(cCtx, "inspecting %s: %v", tok, err)
			}
			w := cCtx.App.Writer
			if output == "json" {
				return writeJSON(w, tokenInspectJSON{Schema: schemaTokenInspect, Inspection: in})
			}
			fmt.Fprintf(w, "token      %s (signature not verified)\n", in.Fingerprint)
			fmt.Fprintf(w, "algorithm  %s\n", in.Algorithm)
			if in.IssuedAt != nil {
				fmt.Fprintf(w, "issued     %s\n", in.IssuedAt.Format(time.RFC3339))
			}
			if in.ExpiresAt != nil {
				state := "valid for " + time.Until(*in.ExpiresAt).Round(time.Second).String()
				if in.Expired {
					state = "EXPIRED " + time.Since(*in.ExpiresAt).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(w, "expires    %s (%s)\n", in.ExpiresAt.Format(time.RFC3339), state)
			} else {
				fmt.Fprintln(w, "expires    never (no exp claim)")
			}
			header, _ := json.Marshal(in.Header)
			claims, _ := json.MarshalIndent(in.Claims, "           ", "  ")
			fmt.Fprintf(w, "header     %s\nclaims     %s\n", header, claims)
			return nil
		},
	}
}

func tokenForgeCommand() *cli.Command {
	return &cli.Command{
		Name:  "forge",
		Usage: "sign claims (copied from a token, or from a JSON file) with a secret, into a file",
		Description: `Copies the claims of the input token (or reads --claims-file), applies --set overrides,
and signs them with VALINE_SECRET (or VALINE_OLD_SECRET with --with-old). The token is written
to --out with mode 0600, never to the terminal. Example, a pre-rotation token for a manual test:

  VALINE_TOKEN=... VALINE_OLD_SECRET=... valine-check token forge --with-old --out old.jwt`,
		Flags: []cli.Flag{envStdinFlag,
			&cli.PathFlag{Name: "out", Usage: "file to write the token to (required; a new or a regular file, not a link or a device; written with mode 0600)"},
			&cli.PathFlag{Name: "claims-file", Usage: "JSON object of claims, instead of copying a token's"},
			&cli.StringSliceFlag{Name: "set", Usage: "claim override NAME=VALUE (numbers stay numbers); repeatable"},
			&cli.StringFlag{Name: "alg", Value: "HS256", Usage: "HS256, HS384 or HS512"},
			&cli.BoolFlag{Name: "with-old", Usage: "sign with VALINE_OLD_SECRET instead of VALINE_SECRET"},
			&cli.DurationFlag{Name: "expires-in", Usage: "set exp to now plus this (and iat to now)"},
			outputFlag("text", "json"),
		},
		Action: tokenForgeAction,
	}
}

func tokenForgeAction(cCtx *cli.Context) error {
	output, err := outputFormat(cCtx, "text", "json")
	if err != nil {
		return err
	}
	out := cCtx.Path("out")
	if out == "" {
		return usageError(cCtx, "missing required flag --out (a forged token is never printed)")
	}
	if err := checkTokenOut(out); err != nil {
		return usageError(cCtx, "--out %s: %v", out, err)
	}
	method := jwt.GetSigningMethod(cCtx.String("alg"))
	if _, ok := method.(*jwt.SigningMethodHMAC); !ok {
		return usageError(cCtx, "--alg %q: must be HS256, HS384 or HS512", cCtx.String("alg"))
	}
	var claims jwt.MapClaims
	var secrets secretInputs
	if path := cCtx.Path("claims-file"); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return usageError(cCtx, "--claims-file: %v", err)
		}
		if err := json.Unmarshal(raw, &claims); err != nil {
			return usageError(cCtx, "--claims-file: not a JSON object: %v", err)
		}
		if secrets, err = readSecretInputs(cCtx); err != nil {
			return err
		}
	} else {
		tok, in, err := tokenInput(cCtx)
		if err != nil {
			return err
		}
		secrets = in
		if claims, err = probes.Claims(tok); err != nil {
			return usageError(cCtx, "reading claims of %s: %v", tok, err)
		}
	}
	for _, kv := range cCtx.StringSlice("set") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError(cCtx, "--set %q: want NAME=VALUE", kv)
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			claims[k] = n
		} else {
			claims[k] = v
		}
	}
	if d := cCtx.Duration("expires-in"); d != 0 {
		claims["iat"] = time.Now().Unix()
		claims["exp"] = time.Now().Add(d).Unix()
	}
	name := envSecret
	if cCtx.Bool("with-old") {
		name = envOldSecret
	}
	key := secrets.secret(name)
	if key.IsEmpty() {
		return usageError(cCtx, "missing %s (environment or --env-stdin)", name)
	}
	tok, err := probes.Forge(claims, method, key)
	if err != nil {
		return cli.Exit(err.Error(), exitFailed)
	}
	if err := writeTokenFile(out, tok); err != nil {
		return cli.Exit(fmt.Sprintf("writing %s: %v", out, err), exitEnvError)
	}
	if output == "json" {
		return writeJSON(cCtx.App.Writer, tokenForgeJSON{Schema: schemaTokenForge, Token: tok.String(), Algorithm: method.Alg(),
			SignedWith: name, Secret: key.Fingerprint(), Out: out})
	}
	fmt.Fprintf(cCtx.App.Writer, "wrote %s (%s, signed with %s %s) to %s\n", tok, method.Alg(), strings.ToLower(strings.TrimPrefix(name, "VALINE_")), key, out)
	return nil
}

func tokenWhichCommand() *cli.Command {
	return &cli.Command{
		Name:  "which",
		Usage: "tell which candidate secret signed a token (VALINE_SECRET, VALINE_OLD_SECRET)",
		Description: `Exit 0 and the matching candidate's label and fingerprint when one signed the token;
exit 1 when none did; exit 2 when the token is not a JWT.`,
		Flags: []cli.Flag{envStdinFlag, outputFlag("text", "json")},
		Action: func(cCtx *cli.Context) error {
			output, err := outputFormat(cCtx, "text", "json")
			if err != nil {
				return err
			}
			tok, secrets, err := tokenInput(cCtx)
			if err != nil {
				return err
			}
			var candidates []probes.NamedSecret
			for _, c := range []struct{ label, env string }{{"current", envSecret}, {"old", envOldSecret}} {
				if s := secrets.secret(c.env); !s.IsEmpty() {
					candidates = append(candidates, probes.NamedSecret{Label: c.label, Secret: s})
				}
			}
			if len(candidates) == 0 {
				return usageError(cCtx, "no candidate secrets: set VALINE_SECRET and/or VALINE_OLD_SECRET")
			}
			got, ok := probes.WhichSecret(tok, candidates)
			var names []string
			doc := tokenWhichJSON{Schema: schemaTokenWhich, Token: tok.String(), Candidates: []namedFingerprint{}}
			for _, c := range candidates {
				names = append(names, c.Label+" "+c.Secret.Fingerprint())
				doc.Candidates = append(doc.Candidates, namedFingerprint{Label: c.Label, Fingerprint: c.Secret.Fingerprint()})
			}
			if ok {
				doc.SignedBy = &namedFingerprint{Label: got.Label, Fingerprint: got.Secret.Fingerprint()}
			}
			switch {
			case output == "json":
				if err := writeJSON(cCtx.App.Writer, doc); err != nil {
					return err
				}
			case ok:
				fmt.Fprintf(cCtx.App.Writer, "%s was signed with the %s secret %s\n", tok, got.Label, got.Secret)
			}
			if !ok {
				return cli.Exit(fmt.Sprintf("%s was signed with none of: %s", tok, strings.Join(names, ", ")), exitFailed)
			}
			return nil
		},
	}
}

// tokenInput reads the token (VALINE_TOKEN, --env-stdin, else stdin's first
// line) and the secret inputs. A token that does not parse is bad input.
func tokenInput(cCtx *cli.Context) (secret.Token, secretInputs, error) {
	secrets, err := readSecretInputs(cCtx)
	if err != nil {
		return secret.Token{}, secrets, err
	}
	tok := secrets.token(envToken)
	if tok.IsEmpty() && !cCtx.Bool("env-stdin") {
		line, err := bufio.NewReader(cCtx.App.Reader).ReadString('\n')
		if err != nil && line == "" {
			return secret.Token{}, secrets, usageError(cCtx, "no token: set VALINE_TOKEN or pipe the token on standard input")
		}
		tok = secret.NewToken(strings.TrimSpace(line))
	}
	if tok.IsEmpty() {
		return secret.Token{}, secrets, usageError(cCtx, "no token: set VALINE_TOKEN or pipe the token on standard input")
	}
	if _, err := probes.Claims(tok); err != nil {
		// The parser's error never quotes the token; the token is named by
		// its fingerprint only.
		return secret.Token{}, secrets, usageError(cCtx, "%s is not a well-formed JWT: %v", tok, err)
	}
	return tok, secrets, nil
}

package probes

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/valine/valine-check/internal/secret"
)

// SecretHonoured returns a probe that forges a token from a fresh session's
// claims, signed with key, and expects the profile endpoint to accept it.
// Rotation uses it to prove that the API honours a secret it was only given
// as the secondary, before relying on a grace period.
func SecretHonoured(key secret.Secret) Probe {
	return func(ctx context.Context, t Target, cfg Config, log *slog.Logger) Result {
		s, skip := needSession(t)
		if skip != nil {
			return *skip
		}
		tok, err := Resign(s.Access, key)
		if err != nil {
			return errored("forging a token with "+key.Fingerprint()+": "+err.Error(), nil)
		}
		// Refused until the secret propagates: mark it as the probe's own.
		resp, err := t.meDeliberately(ctx, tok, cfg)
		if err != nil {
			return fromCallError("calling "+t.API.Profile.ProfilePath, err)
		}
		details := map[string]any{"status": resp.Status, "secret": key.Fingerprint()}
		switch {
		case resp.Status >= 200 && resp.Status < 300:
			return passed(fmt.Sprintf("a token signed with %s was accepted", key), details)
		case t.API.IsRejection(resp):
			// Only the API's own rejection says "no".
			return failed(fmt.Sprintf("a token signed with %s was refused (HTTP %d %s): the API does not honour it", key, resp.Status, resp.Body), details)
		}
		return errored(fmt.Sprintf("a token signed with %s got HTTP %d %s, neither acceptance nor the rejection %d: cannot tell whether the API honours it",
			key, resp.Status, resp.Body, t.API.Profile.RejectStatus), details)
	}
}

// HonouredCheck is SecretHonoured as a catalog-style check that waits for
// propagation, named name, for the runner.
func HonouredCheck(name string, key secret.Secret) Check {
	return Check{Name: name, Description: "a token signed with the given secret is accepted",
		Needs: []string{"login"}, Eventually: true, Probe: SecretHonoured(key)}
}

// CatalogCheck returns the catalog's check of that name, for runs that build
// their own list (login with an extra check, say).
func CatalogCheck(name string) (Check, bool) {
	for _, c := range Catalog() {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

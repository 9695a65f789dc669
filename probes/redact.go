package probes

import "github.com/valine/valine-check/internal/secret"

// knownSecrets is every secret value a run knows: the client's and the
// run's own inputs.
func (c *Client) knownSecrets(cfg Config) *secret.Redactor {
	var red *secret.Redactor
	if c != nil {
		red = c.Redact
	}
	red = red.Clone()
	red.AddSecrets(cfg.ProbePassword, cfg.OldSecret, cfg.CurrentSecret)
	red.AddTokens(cfg.OldToken, cfg.OldRefresh)
	return red
}

// withSecretsOf is a copy of c whose answers are also redacted of every
// secret value cfg holds, so a run never quotes one back, whatever the API
// echoes.
func (c *Client) withSecretsOf(cfg Config) *Client {
	if c == nil {
		return nil
	}
	d := *c
	d.Redact = c.knownSecrets(cfg)
	return &d
}

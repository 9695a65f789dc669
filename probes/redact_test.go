package probes

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/valine/valine-check/internal/profile"
	"github.com/valine/valine-check/internal/secret"
)

// An API whose error answers quote the request (the login body, escaped
// or not) never gets the probe password into a result.
func TestAnswersQuotingTheRequestAreRedacted(t *testing.T) {
	const pw = "hunter2/&é-probe"
	echo := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		// As the SDK of another language would quote it: escaped slashes.
		_, _ = fmt.Fprintf(w, `{"error":"cannot parse %s","raw":"%s"}`, body, strings.ReplaceAll(string(body), `/`, `\/`))
	}
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Profile: profile.Presets["runbook"], Redact: secret.NewRedactor("an-old-secret-value-0123456789abcdef")}
	res := Login(context.Background(), Target{API: c}, Config{ProbeEmail: "p@x", ProbePassword: secret.NewSecret(pw)}, slog.New(slog.DiscardHandler))
	if res.Outcome != Fail || !strings.Contains(res.Reason, secret.Redacted) {
		t.Fatalf("login against an echoing API: %s %q", res.Outcome, res.Reason)
	}
	for _, leak := range []string{pw, `hunter2\/`, "hunter2"} {
		if strings.Contains(res.Reason, leak) {
			t.Errorf("the result quotes the password (%q): %s", leak, res.Reason)
		}
	}
}

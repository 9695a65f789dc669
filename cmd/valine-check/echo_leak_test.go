package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An API whose error answers quote the request (as some frameworks' 400s
// do, with the escapes of another language) never gets the probe password
// or a secret into stdout, stderr or the report file.
func TestAnAPIEchoingTheRequestLeaksNothing(t *testing.T) {
	t.Parallel()
	const password = "s3cr/t&pässw0rd-of-the-probe"
	const oldSecret = "old-signing-secret/0123456789abcdef0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		escaped := strings.NewReplacer("/", `\/`, "ä", `\u00e4`, "&", `\u0026`).Replace(string(body))
		_, _ = io.WriteString(w, `{"error":"invalid request","echo":"`+escaped+`","headers":"`+r.Header.Get("Cookie")+`"}`)
	}))
	defer srv.Close()
	report := filepath.Join(t.TempDir(), "report.json")
	env := []string{"VALINE_API_URL=" + srv.URL, "VALINE_PROBE_EMAIL=probe@valine.test", "VALINE_PROBE_PASSWORD=" + password,
		"VALINE_OLD_SECRET=" + oldSecret}
	got := runCLI(t, env, "", "--log-level", "debug", "after-rotation", "--report-file", report)
	if got.code != exitFailed {
		t.Fatalf("want exit 1 (login refused), got:\n%s", got)
	}
	file, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	all := got.stdout + got.stderr + string(file)
	for _, leak := range []string{password, `s3cr\/t`, "s3cr", oldSecret} {
		if strings.Contains(all, leak) {
			t.Errorf("the output holds %q", leak)
		}
	}
	if !strings.Contains(all, "[redacted]") {
		t.Errorf("nothing says it was redacted: the test tests nothing:\n%s", got)
	}
}

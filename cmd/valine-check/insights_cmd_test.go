package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valine/valine-check/internal/secret"
	"github.com/valine/valine-check/internal/testbed"
	"github.com/valine/valine-check/probes"
)

// insightsTraffic makes the API log users, n failed verifications from a
// client with a tampered token, and one deliberate rejection by the probe.
func insightsTraffic(t *testing.T, w *testbed.World, failures int) {
	t.Helper()
	ctx := t.Context()
	if err := w.SimulateUsers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	c := &probes.Client{BaseURL: w.APIURL, Profile: w.Profile}
	s, err := c.Login(ctx, w.ProbeEmail, secret.NewSecret(w.ProbePassword))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := probes.TamperedSignature(s.Access)
	if err != nil {
		t.Fatal(err)
	}
	for range failures {
		if resp, err := c.Me(ctx, bad); err != nil || resp.Status != http.StatusUnauthorized {
			t.Fatalf("tampered token: %+v, %v", resp, err)
		}
	}
	marker := probes.DeliberatePrefix + "0123456789abcdef" // one probe run's
	if resp, err := c.MeDeliberately(ctx, bad, marker); err != nil || resp.Status != http.StatusUnauthorized {
		t.Fatalf("deliberate rejection: %+v, %v", resp, err)
	}
}

func TestInsightsCommands(t *testing.T) {
	t.Parallel()
	f := startFleet(t, testbed.Options{})
	insightsTraffic(t, f.w, 3)
	known := []string{f.w.InitialSecret(), f.w.ProbePassword}

	list := runCLI(t, f.env, "", "insights", "list")
	if list.code != exitOK {
		t.Fatalf("insights list:\n%s", list)
	}
	for _, want := range []string{"jwt-failures", "secondary-use", "unauthorized", "errors",
		"filter @message like /JWT verification failed/ and @message not like /ua=valine-check-deliberate", "stats count(*) as failures by bin(5m)"} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("insights list lacks %q:\n%s", want, list)
		}
	}

	run := runCLI(t, f.env, "", "insights", "run", "jwt-failures", "--since", "1h")
	if run.code != exitOK {
		t.Fatalf("insights run jwt-failures:\n%s", run)
	}
	fleet := slices.Sorted(slices.Values(f.w.Functions))
	groups := "/aws/lambda/" + strings.Join(fleet, ", /aws/lambda/")
	for _, want := range []string{"log groups: " + groups, "deliberate rejections (User-Agent valine-check-deliberate/…) are left out", "BIN(5M) UTC", "FAILURES",
		"total failures: 3", "statistics: Complete", "3 records matched"} {
		if !strings.Contains(run.stdout, want) {
			t.Errorf("insights run jwt-failures lacks %q:\n%s", want, run)
		}
	}

	js := runCLI(t, f.env, "", "insights", "run", "unauthorized", "--since", "1h", "--until", time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "-o", "json")
	var out struct {
		Query  struct{ Name string }
		Total  float64
		Result struct {
			Status string
			Rows   []map[string]string
		}
	}
	if js.code != exitOK || json.Unmarshal([]byte(js.stdout), &out) != nil {
		t.Fatalf("insights run unauthorized -o json:\n%s", js)
	}
	if out.Query.Name != "unauthorized" || out.Total != 3 || out.Result.Status != "Complete" || len(out.Result.Rows) != 1 || out.Result.Rows[0]["path"] != f.w.Profile.ProfilePath {
		t.Errorf("json output %+v", out)
	}

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown query", []string{"insights", "run", "nope"}, `unknown query "nope" (known: jwt-failures, secondary-use, unauthorized, errors, verifications)`},
		{"no query", []string{"insights", "run"}, "give one query name"},
		{"bad since", []string{"insights", "run", "errors", "--since", "yesterday"}, "--since"},
		{"until before since", []string{"insights", "run", "errors", "--since", "1h", "--until", "2h"}, "must be after --since"},
		{"bad output", []string{"insights", "run", "errors", "-o", "yaml"}, "--output"},
	} {
		got := runCLI(t, f.env, "", tc.args...)
		if got.code != exitUsage || !strings.Contains(got.stderr, tc.wantErr) {
			t.Errorf("%s: want exit 2 with %q:\n%s", tc.name, tc.wantErr, got)
		}
	}

	f.w.AWSFront.SetInsightsPollsUntilComplete(-1)
	slow := runCLI(t, f.env, "", "insights", "run", "errors", "--deadline", "1s")
	if slow.code != exitEnvError || !strings.Contains(slow.stderr, "query errors did not finish within 1s") {
		t.Errorf("a query that never finishes: want exit 3 saying so:\n%s", slow)
	}
	if n := f.w.AWSFront.ClientCalls("logs:StopQuery"); n != 1 {
		t.Errorf("StopQuery called %d times, want 1", n)
	}
	for _, r := range []cliRun{list, run, js, slow} {
		assertNoLeak(t, "insights", r.stdout+r.stderr, known...)
	}
}

func TestParseInsightsTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "1h", want: now.Add(-time.Hour)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "2026-11-28T22:00:00-05:00", want: time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)},
		{in: "-1h", err: true},
		{in: "yesterday", err: true},
		{in: "", err: true},
	} {
		got, err := parseTime(tc.in, now)
		if (err != nil) != tc.err || !tc.err && !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %s, %v; want %s (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

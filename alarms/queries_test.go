package alarms_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/valine/valine-check/alarms"
	"github.com/valine/valine-check/internal/profile"
)

func TestQueriesFollowTheProfile(t *testing.T) {
	t.Parallel()
	custom := profile.Presets["runbook"]
	custom.LogFailurePattern = `"auth/jwt: rejected"`
	custom.LogVerificationPattern = `{ $.event = "jwt" }`
	tests := []struct {
		name    string
		profile profile.Profile
		opts    []alarms.QueryOption
		want    map[string]string // query name -> substring of its query string
		absent  []string
	}{
		{
			name:    "runbook",
			profile: profile.Presets["runbook"],
			want: map[string]string{
				alarms.QueryJWTFailures:  "filter @message like /JWT verification failed/ | stats count(*) as failures by bin(5m)",
				alarms.QuerySecondaryUse: "filter @message like /JWT verification/ and @message like /secret=secondary/ | stats count(*) as secondaryUses by bin(5m)",
				alarms.QueryUnauthorized: `filter @message like /JWT verification failed/ | parse @message /path=(?<path>\S+)/ | stats count(*) as unauthorized by path`,
				alarms.QueryErrors:       "filter @message like /ERROR|Task timed out/ | stats count(*) as errors by bin(5m)",
			},
			absent: []string{"not like"},
		},
		{
			// A quoted phrase loses its quotes and has its slash escaped; a
			// JSON pattern cannot be a regex and falls back to the phrase.
			name:    "custom patterns",
			profile: custom,
			want: map[string]string{
				alarms.QueryJWTFailures:  `like /auth\/jwt: rejected/ |`,
				alarms.QuerySecondaryUse: "like /JWT verification/ and",
			},
		},
		{
			name:    "deliberate rejections excluded",
			profile: profile.Presets["cookie"],
			opts:    []alarms.QueryOption{alarms.ExcludeDeliberate("valine-check-deliberate/0123456789abcdef")},
			want: map[string]string{
				alarms.QueryJWTFailures:   `like /JWT verification failed/ and @message not like /ua=valine-check-deliberate\/0123456789abcdef/ | stats`,
				alarms.QueryUnauthorized:  `and @message not like /ua=valine-check-deliberate\/0123456789abcdef/ | parse`,
				alarms.QueryProbeRefusals: `like /JWT verification failed/ and @message like /ua=valine-check-deliberate\/0123456789abcdef/ | stats count(*) as probeRefusals`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			qs := alarms.Queries(tt.profile, tt.opts...)
			want := []string{"jwt-failures", "secondary-use", "unauthorized", "errors", "verifications"}
			if len(tt.opts) > 0 {
				want = append(want, "probe-refusals") // only when there is a marker to count
			}
			if names := alarms.QueryNames(qs); !slices.Equal(names, want) {
				t.Errorf("names %v, want %v", names, want)
			}
			for name, want := range tt.want {
				q, ok := alarms.FindQuery(qs, name)
				if !ok || !strings.Contains(q.String, want) {
					t.Errorf("%s: %q, want it to contain %q", name, q.String, want)
				}
				if q.Description == "" || q.Field == "" || !strings.Contains(q.String, "as "+q.Field) {
					t.Errorf("%s: description %q, field %q", name, q.Description, q.Field)
				}
			}
			for _, q := range qs {
				for _, a := range tt.absent {
					if strings.Contains(q.String, a) {
						t.Errorf("%s contains %q: %s", q.Name, a, q.String)
					}
				}
			}
		})
	}
	if _, ok := alarms.FindQuery(alarms.Queries(profile.Presets["runbook"]), "nope"); ok {
		t.Error("FindQuery found an unknown name")
	}
}

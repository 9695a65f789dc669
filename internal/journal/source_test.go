package journal

import (
	"strings"
	"testing"
	"time"
)

func TestParseSourceReadsEachKindAndRefusesTheRest(t *testing.T) {
	good := map[string]Source{
		"":                                      LambdaEnv,
		"lambda-env":                            LambdaEnv,
		"ssm:/valine/prod/jwt-secret":           {Kind: SourceSSM, Name: "/valine/prod/jwt-secret"},
		"ssm:valine-jwt":                        {Kind: SourceSSM, Name: "valine-jwt"},
		"secretsmanager:valine/prod/jwt-secret": {Kind: SourceSecretsManager, Name: "valine/prod/jwt-secret"},
		"secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:valine-AbCdEf": {Kind: SourceSecretsManager,
			Name: "arn:aws:secretsmanager:us-east-1:123456789012:secret:valine-AbCdEf"},
	}
	for in, want := range good {
		got, err := ParseSource(in)
		if err != nil || got != want {
			t.Errorf("ParseSource(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if in != "" && got.String() != in {
			t.Errorf("ParseSource(%q).String() = %q", in, got.String())
		}
	}
	for _, in := range []string{"ssm:/" + strings.Repeat("a", 260), "ssm", "ssm:", "ssm:/aws/x", "ssm:/a b", "ssm:/a//b", "ssm:/a/", "secretsmanager:", "secretsmanager:a b", "vault:x", "env"} {
		if got, err := ParseSource(in); err == nil {
			t.Errorf("ParseSource(%q) = %+v, want an error", in, got)
		}
	}
	if got := (Source{Kind: SourceSSM, Name: "/v/jwt"}).SecondaryParameter(); got != "/v/jwt-secondary" {
		t.Errorf("SecondaryParameter = %q", got)
	}
}

func TestJournalTagsCarryTheSourceAndOmitTheDefault(t *testing.T) {
	j := Journal{ID: "rot-20261129T031500Z-1a2b3c", Mode: ModeMaintenance, Phase: PhaseApplied,
		Source: Source{Kind: SourceSSM, Name: "/valine/prod/jwt-secret"}, Delivery: DeliveryRuntime, CacheTTL: 5 * time.Minute}
	tags, err := j.Tags()
	if err != nil {
		t.Fatal(err)
	}
	if tags[tagSource] != "ssm:/valine/prod/jwt-secret" || tags[tagDelivery] != "runtime" || tags[tagCacheTTL] != "5m0s" {
		t.Errorf("tags = %v", tags)
	}
	j.Source, j.Delivery, j.CacheTTL = LambdaEnv, DeliveryEnv, 0
	if tags, _ = j.Tags(); tags[tagSource] != "" || tags[tagDelivery] != "" || tags[tagCacheTTL] != "" {
		t.Errorf("the default source, delivery and TTL must be untagged (a journal from before sources reads the same): %v", tags)
	}
	if _, err := ParseDelivery("lambda"); err == nil || !strings.Contains(err.Error(), "env or runtime") {
		t.Errorf("ParseDelivery(lambda) = %v", err)
	}
}

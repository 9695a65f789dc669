package suites

import (
	"encoding/json"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// hidden holds the secret values this process knows (the testbed's secrets
// and probe password, or the deployment's from the environment); BeforeSuite
// fills it.
var hidden []string

// jwtShaped matches a compact JWT: a token has no place in a report either.
var jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.`)

// Every spec's report (failure, entries, captured output, timeline) is
// searched for the secrets and for anything shaped like a token. It runs on
// the spec's own process, which knows that process's secrets.
var _ = ReportAfterEach(func(r SpecReport) {
	b, err := json.Marshal(r)
	Expect(err).NotTo(HaveOccurred())
	text := string(b)
	for _, s := range hidden {
		if s != "" && strings.Contains(text, s) {
			Fail("the spec's report contains a secret value (not shown)")
		}
	}
	if jwtShaped.MatchString(text) {
		Fail("the spec's report contains a JWT-shaped string (not shown)")
	}
})

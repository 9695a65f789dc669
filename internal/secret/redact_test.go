package secret

import (
	"strings"
	"testing"
)

// Whatever escapes an outside encoder used, a known value never survives.
func TestRedactorFindsEveryEscapedForm(t *testing.T) {
	const pw = "p@ss/w0rd&é"
	const db = "postgres://valine:" + pw + "@db:5432/valine"
	r := NewRedactor(db, pw, "abc") // "abc" is too short to look for
	cases := map[string]string{
		"plain":                    `login failed for password ` + pw,
		"go escapes":               `{"DATABASE_URL":"postgres://valine:p@ss/w0rd\u0026é@db:5432/valine"}`,
		"escaped slashes":          `{"DATABASE_URL":"postgres:\/\/valine:p@ss\/w0rd&\u00e9@db:5432\/valine"}`,
		"every char escaped":       `{"password":"\u0070\u0040\u0073\u0073\u002f\u0077\u0030\u0072\u0064\u0026\u00e9"}`,
		"double encoded":           `{"Environment":"{\"DATABASE_URL\":\"postgres:\\/\\/valine:p@ss\\/w0rd&\\u00e9@db:5432\\/valine\"}"}`,
		"truncated literal":        `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {"DATABASE_URL":"postgres:\/\/valine:p@ss\/w0rd&\u00e9@db`,
		"echoed login body":        `{"error":"bad request","body":{"email":"probe@x","password":"p@ss\/w0rd\u0026\u00e9"}}`,
		"value inside a long text": `unexpected answer: ` + db + ` (retry)`,
	}
	for name, in := range cases {
		got := r.Redact(in)
		if strings.Contains(got, "w0rd") || strings.Contains(got, "valine:p") {
			t.Errorf("%s: %q still holds the value", name, got)
		}
		if !strings.Contains(got, Redacted) {
			t.Errorf("%s: %q says nothing was redacted", name, got)
		}
	}
	if got := r.Redact(`{"abc":"nothing secret here"}`); got != `{"abc":"nothing secret here"}` {
		t.Errorf("text without a value changed: %q", got)
	}
	var none *Redactor
	if none.Redact(pw) != pw {
		t.Error("a nil Redactor changed the text")
	}
}

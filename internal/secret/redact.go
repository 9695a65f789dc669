package secret

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Redactor removes known secret values (the probe password, the old, new
// and current secrets, tokens, other environment values) from text quoted
// from outside: an API's error body, a Lambda error, a log line. A value
// is found as it is, and inside any JSON string literal whatever its
// escapes (Go's \u0026, another encoder's \/ or \u00e9, a literal holding
// JSON that quotes it again): such a literal is replaced whole. Values
// under MinRedactLen are too short to be secrets and too common to
// replace. The zero value redacts nothing; a nil *Redactor too.
type Redactor struct {
	values []string
}

// MinRedactLen is the shortest value a Redactor looks for.
const MinRedactLen = 4

// Redacted is what a redacted value becomes.
const Redacted = "[redacted]"

// NewRedactor returns a Redactor for values (empty and short ones are
// ignored), longest first so a value inside another is never left half.
func NewRedactor(values ...string) *Redactor {
	r := &Redactor{}
	r.Add(values...)
	return r
}

// Add makes r look for more values too.
func (r *Redactor) Add(values ...string) {
	for _, v := range values {
		if len(v) >= MinRedactLen {
			r.values = append(r.values, v)
		}
	}
	sort.SliceStable(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
}

// Clone is a copy of r that more values can be added to (an empty one for
// a nil r).
func (r *Redactor) Clone() *Redactor {
	c := &Redactor{}
	if r != nil {
		c.values = append(c.values, r.values...)
	}
	return c
}

// AddSecrets adds the secrets' values.
func (r *Redactor) AddSecrets(secrets ...Secret) {
	for _, s := range secrets {
		r.Add(string(s.Reveal()))
	}
}

// AddTokens adds the tokens' values.
func (r *Redactor) AddTokens(tokens ...Token) {
	for _, t := range tokens {
		r.Add(t.Reveal())
	}
}

// maxEscapeDepth bounds how many times text is unescaped while looking
// for a value: a literal holding JSON that quotes it again is 2.
const maxEscapeDepth = 3

// Redact returns s with every known value replaced by Redacted: where it
// stands as it is, and where it stands written with JSON escapes of any
// kind and depth (\u0026, \/, \u00e9, \\/ …), whether or not the escaped
// text around it is well-formed JSON.
func (r *Redactor) Redact(s string) string {
	if r == nil || len(r.values) == 0 {
		return s
	}
	view := identityView(s)
	var spans [][2]int
	for depth := 0; depth <= maxEscapeDepth; depth++ {
		for _, v := range r.values {
			for from := 0; ; {
				i := strings.Index(view.text[from:], v)
				if i < 0 {
					break
				}
				i += from
				spans = append(spans, [2]int{view.start[i], view.end[i+len(v)-1]})
				from = i + len(v)
			}
		}
		next, changed := view.unescaped()
		if !changed {
			break
		}
		view = next
	}
	if len(spans) == 0 {
		return s
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] < spans[j][0] })
	var b strings.Builder
	at := 0
	for i := 0; i < len(spans); i++ {
		from, to := spans[i][0], spans[i][1]
		for i+1 < len(spans) && spans[i+1][0] <= to { // merge overlapping spans
			i++
			to = max(to, spans[i][1])
		}
		b.WriteString(s[at:from])
		b.WriteString(Redacted)
		at = to
	}
	b.WriteString(s[at:])
	return b.String()
}

// textView is a text derived from an original one (by unescaping), with,
// for each of its bytes, the span of the original it came from.
type textView struct {
	text       string
	start, end []int // byte i of text came from original[start[i]:end[i]]
}

func identityView(s string) textView {
	v := textView{text: s, start: make([]int, len(s)), end: make([]int, len(s))}
	for i := 0; i < len(s); i++ { // every byte, not every rune
		v.start[i], v.end[i] = i, i+1
	}
	return v
}

// unescaped decodes one level of JSON escapes in v (\" \\ \/ \b \f \n
// \r \t and \uXXXX, surrogate pairs included), keeping each decoded byte's
// original span; changed is false when there was nothing to decode.
func (v textView) unescaped() (out textView, changed bool) {
	var b []byte
	emit := func(bs []byte, from, to int) {
		for range bs {
			out.start = append(out.start, v.start[from])
			out.end = append(out.end, v.end[to-1])
		}
		b = append(b, bs...)
	}
	s := v.text
	for i := 0; i < len(s); {
		if s[i] != '\\' || i+1 >= len(s) {
			emit([]byte{s[i]}, i, i+1)
			i++
			continue
		}
		if c, ok := simpleEscapes[s[i+1]]; ok {
			emit([]byte{c}, i, i+2)
			i, changed = i+2, true
			continue
		}
		if r, n := unicodeEscape(s[i:]); n > 0 {
			emit([]byte(string(r)), i, i+n)
			i, changed = i+n, true
			continue
		}
		emit([]byte{s[i]}, i, i+1)
		i++
	}
	out.text = string(b)
	return out, changed
}

var simpleEscapes = map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// unicodeEscape decodes a \uXXXX escape (or a surrogate pair of them) at
// the start of s, returning the rune and the bytes it took (0: none).
func unicodeEscape(s string) (rune, int) {
	hex4 := func(s string) (rune, bool) {
		if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(s[2:6], 16, 32)
		return rune(n), err == nil
	}
	r, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	if utf16.IsSurrogate(r) {
		if r2, ok := hex4(s[6:]); ok {
			if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
				return pair, 12
			}
		}
	}
	return r, 6
}

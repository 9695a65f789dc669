package testbed

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parameter history and labels, which kumo lacks (see ssmFront), served as
// AWS documents them:
//
//   - GetParameterHistory (Name or ARN): every version Front keeps, oldest
//     first, each with its Labels and its own Type, Description, KeyId,
//     Tier and DataType, SecureString values decrypted only with
//     WithDecryption; MaxResults a page (1 to 50, default 50, else
//     ValidationException) with an opaque NextToken while more follow (a
//     token Front did not issue is InvalidNextToken).
//   - LabelParameterVersion (Name, ParameterVersion, default the latest,
//     Labels, 1 to 10 of 1 to 100 characters, else ValidationException): a
//     label is on one version of a parameter at a time, so attaching it
//     moves it from any other version; a version holds at most 10 labels
//     (ParameterVersionLabelLimitExceeded, and nothing changes). A label
//     of other characters than letters, digits, period, hyphen and
//     underscore, or starting with a digit, "aws" or "ssm" (any case) is
//     not attached but returned in InvalidLabels. An unknown parameter is
//     ParameterNotFound, an unknown version ParameterVersionNotFound. The
//     answer carries InvalidLabels and the ParameterVersion labelled.
//   - UnlabelParameterVersion (Name, ParameterVersion, Labels): removes the
//     labels the version has (RemovedLabels) and lists the others in
//     InvalidLabels; errors as LabelParameterVersion's.
const (
	ssmHistoryMaxResults = 50
	ssmMaxLabels         = 10
)

// getParameterHistory serves GetParameterHistory.
func (s *ssmFront) getParameterHistory(body []byte) (any, error) {
	var in struct {
		Name           string
		WithDecryption bool
		MaxResults     *int
		NextToken      string
	}
	if err := ssmDecode(body, &in); err != nil {
		return nil, err
	}
	size, err := ssmPageSize(in.MaxResults, ssmHistoryMaxResults, ssmHistoryMaxResults)
	if err != nil {
		return nil, err
	}
	p := s.lookup(in.Name)
	if p == nil {
		return nil, ssmFail("ParameterNotFound", "Parameter %s not found.", in.Name)
	}
	start := 0
	if in.NextToken != "" {
		at, ok := ssmParseToken("history", in.NextToken)
		n, err := strconv.Atoi(at)
		if !ok || err != nil || n < 0 || n > len(p.versions) {
			return nil, ssmFail("InvalidNextToken", "The specified token isn't valid.")
		}
		start = n
	}
	end := min(start+size, len(p.versions))
	items := []map[string]any{}
	for _, v := range p.versions[start:end] {
		item := map[string]any{
			"Name": p.name, "Type": v.typ, "Value": v.shownValue(in.WithDecryption), "Version": v.version,
			"LastModifiedDate": ssmTime(v.modified), "LastModifiedUser": ssmModifiedByUser,
			"Labels": slices.Clone(v.labels), "Tier": v.tier, "DataType": v.dataType, "Policies": []any{},
		}
		if v.labels == nil {
			item["Labels"] = []string{}
		}
		for k, val := range map[string]string{"Description": v.description, "KeyId": v.keyID, "AllowedPattern": v.allowedPattern} {
			if val != "" {
				item[k] = val
			}
		}
		items = append(items, item)
	}
	out := map[string]any{"Parameters": items}
	if end < len(p.versions) {
		out["NextToken"] = ssmToken("history", strconv.Itoa(end))
	}
	return out, nil
}

// ssmPageSize reads MaxResults: def when absent, else 1 to limit.
func ssmPageSize(max *int, def, limit int) (int, error) {
	if max == nil {
		return def, nil
	}
	if *max < 1 || *max > limit {
		return 0, ssmInvalid("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to %d and greater than or equal to 1.", *max, limit)
	}
	return *max, nil
}

// ssmToken makes an opaque page token of kind holding at.
func ssmToken(kind, at string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("tbssm1:" + kind + ":" + at))
}

// ssmParseToken reads a token ssmToken made for kind.
func ssmParseToken(kind, token string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(raw), "tbssm1:"+kind+":")
}

// ssmLabelInput is the request of LabelParameterVersion and
// UnlabelParameterVersion.
type ssmLabelInput struct {
	Name             string
	ParameterVersion *int64
	Labels           []string
}

// labelTarget checks a (un)label request and returns the parameter and
// version it names (the latest when ParameterVersion is absent).
func (s *ssmFront) labelTarget(body []byte, versionRequired bool) (ssmLabelInput, *ssmParam, *ssmVersion, error) {
	var in ssmLabelInput
	if err := ssmDecode(body, &in); err != nil {
		return in, nil, nil, err
	}
	if len(in.Labels) < 1 || len(in.Labels) > ssmMaxLabels {
		return in, nil, nil, ssmInvalid("1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1.")
	}
	for _, l := range in.Labels {
		if n := utf8.RuneCountInString(l); n < 1 || n > 100 {
			return in, nil, nil, ssmInvalid("1 validation error detected: Value '[%s]' at 'labels' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 100, Member must have length greater than or equal to 1]", l)
		}
	}
	if versionRequired && in.ParameterVersion == nil {
		return in, nil, nil, ssmInvalid("1 validation error detected: Value null at 'parameterVersion' failed to satisfy constraint: Member must not be null.")
	}
	p := s.params[in.Name]
	if p == nil {
		return in, nil, nil, ssmFail("ParameterNotFound", "Parameter %s not found.", in.Name)
	}
	v := p.latest()
	if in.ParameterVersion != nil {
		if v = p.find(*in.ParameterVersion); v == nil {
			return in, nil, nil, ssmFail("ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", *in.ParameterVersion, in.Name)
		}
	}
	return in, p, v, nil
}

// labelParameterVersion serves LabelParameterVersion.
func (s *ssmFront) labelParameterVersion(body []byte) (any, error) {
	in, p, target, err := s.labelTarget(body, false)
	if err != nil {
		return nil, err
	}
	invalid, add := []string{}, []string{}
	for _, l := range in.Labels {
		switch {
		case !validParameterLabel(l):
			invalid = append(invalid, l)
		case !slices.Contains(target.labels, l) && !slices.Contains(add, l):
			add = append(add, l)
		}
	}
	if len(target.labels)+len(add) > ssmMaxLabels {
		return nil, ssmFail("ParameterVersionLabelLimitExceeded", "A parameter version can have maximum 10 labels. Move one or more labels to another version and try again.")
	}
	for _, v := range p.versions {
		if v != target {
			v.labels = slices.DeleteFunc(v.labels, func(l string) bool { return slices.Contains(add, l) })
		}
	}
	target.labels = append(target.labels, add...)
	return map[string]any{"InvalidLabels": invalid, "ParameterVersion": target.version}, nil
}

// unlabelParameterVersion serves UnlabelParameterVersion.
func (s *ssmFront) unlabelParameterVersion(body []byte) (any, error) {
	in, _, target, err := s.labelTarget(body, true)
	if err != nil {
		return nil, err
	}
	removed, invalid := []string{}, []string{}
	for _, l := range in.Labels {
		if slices.Contains(target.labels, l) {
			target.labels = slices.DeleteFunc(target.labels, func(x string) bool { return x == l })
			removed = append(removed, l)
		} else if !slices.Contains(removed, l) {
			invalid = append(invalid, l)
		}
	}
	return map[string]any{"RemovedLabels": removed, "InvalidLabels": invalid}, nil
}

// validParameterLabel reports whether AWS attaches label (its length is
// checked before).
func validParameterLabel(label string) bool {
	lower := strings.ToLower(label)
	if strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ssm") || label[0] >= '0' && label[0] <= '9' {
		return false
	}
	return !strings.ContainsFunc(label, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_')
	})
}

package testbed

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ssmFront is SSM Parameter Store (JSON 1.1, X-Amz-Target
// "AmazonSSM.<Op>"), served by Front from its own store instead of patched
// over kumo: kumo keeps only a parameter's latest version, so history,
// labels and selectors have nothing to stand on there. Measured against
// kumo v0.33.1, which serves PutParameter, GetParameter(s),
// GetParametersByPath, DescribeParameters, DeleteParameter(s) and tags:
//
//   - Versions: kumo numbers them right (Overwrite increments Version,
//     GetParameter returns it, Overwrite false on an existing parameter is
//     ParameterAlreadyExists, a parameter deleted and put again starts at 1)
//     but keeps only the latest value.
//   - GetParameterHistory, LabelParameterVersion and
//     UnlabelParameterVersion: ValidationException "The action … is not
//     valid".
//   - Selectors: kumo looks "name:3" and "name:label" up as literal names,
//     so GetParameter answers ParameterNotFound and GetParameters lists them
//     in InvalidParameters.
//   - SecureString: read without WithDecryption, kumo answers
//     "kms:alias/aws/ssm:" followed by the plaintext; AWS answers the
//     ciphertext (base64), so a read that AWS keeps secret leaks it.
//   - Validation: kumo creates a parameter without a Type (AWS refuses:
//     "You must specify a parameter type when creating a parameter"), under
//     names AWS refuses (spaces, "!", ":", so a stored name can look like a
//     selector), with values over the tier's limit (4096 characters for
//     Standard), and with Tags and Overwrite together (AWS:
//     ValidationException).
//   - Tags: kumo drops PutParameter's Tags, tags a parameter that does not
//     exist (AWS: InvalidResourceId) and keeps the tags of a deleted one.
//
// Front serves all of these operations, AddTagsToResource,
// RemoveTagsFromResource and ListTagsForResource for ResourceType
// "Parameter" included, from a store of its own, one per Front (so one per
// World), keyed by parameter name, with every version of each parameter
// (oldest first, at most 100: a 101st drops the oldest, unless the oldest
// has a label, which is ParameterMaxVersionLimitExceeded). Every other SSM
// operation, and tags of other resource types, go to kumo. The behaviour,
// as AWS documents it:
//
//   - PutParameter (front_ssm_put.go): Type is required to create
//     (String, StringList or SecureString) and kept when an overwrite
//     omits it, as are Description, KeyId (SecureString; default
//     alias/aws/ssm), DataType (default text) and Tier (Standard, or
//     Advanced, which cannot go back; values up to 4096 or 8192
//     characters); Tags only on creation, never with Overwrite
//     (ValidationException). Names as AWS allows them
//     (letters, digits, _ . - /, a path starting with /, at most 15 levels,
//     not beginning with aws or ssm), else ValidationException
//     (HierarchyLevelLimitExceededException past 15 levels).
//   - Reads (GetParameter, GetParameters, GetParameterHistory) take a name
//     or an ARN; GetParameter and GetParameters take "name:<version>" and
//     "name:<label>", answer that version with Selector ":<version>" or
//     ":<label>", and answer an unknown parameter or label ParameterNotFound
//     and an unknown version ParameterVersionNotFound (GetParameters lists
//     both in InvalidParameters). SecureString values are decrypted only
//     with WithDecryption; without it they read as a random ciphertext
//     fixed per version, never the plaintext.
//   - GetParameterHistory, LabelParameterVersion, UnlabelParameterVersion:
//     see front_ssm_history.go. GetParametersByPath, DescribeParameters and
//     tags: see front_ssm_list.go.
//   - DeleteParameter removes the parameter, its history, labels and tags.
//
// Not modelled: AllowedPattern (stored and reported, never enforced),
// Policies, parameter sharing, the value check of DataType aws:ec2:image,
// the account's default tier (always Standard), KMS (KeyId is recorded,
// not checked), the {{ }} ban in values, and AWS's throughput quotas. A
// change of Type on overwrite is allowed, as kumo allows it.
type ssmFront struct {
	mu     sync.Mutex
	params map[string]*ssmParam // by name
}

// ssmParam is one parameter: its versions, oldest first, and tags.
type ssmParam struct {
	name     string
	versions []*ssmVersion
	tags     map[string]string
}

// ssmVersion is one version of a parameter.
type ssmVersion struct {
	version                      int64
	typ, value, ciphertext       string
	description, keyID, dataType string
	allowedPattern, tier         string
	modified                     time.Time
	labels                       []string
}

const (
	ssmSecure         = "SecureString"
	ssmStandard       = "Standard"
	ssmAdvanced       = "Advanced"
	ssmMaxVersions    = 100
	ssmMaxDepth       = 15
	ssmDefaultKeyID   = "alias/aws/ssm"
	ssmModifiedByUser = "arn:aws:iam::000000000000:root"
)

// ssmHandlers are the operations ssmFront serves. A handler runs under
// ssmFront.mu and returns the answer's body or an *ssmErr.
var ssmHandlers = map[string]func(s *ssmFront, body []byte) (any, error){
	"PutParameter":            (*ssmFront).putParameter,
	"GetParameter":            (*ssmFront).getParameter,
	"GetParameters":           (*ssmFront).getParameters,
	"DeleteParameter":         (*ssmFront).deleteParameter,
	"DeleteParameters":        (*ssmFront).deleteParameters,
	"GetParameterHistory":     (*ssmFront).getParameterHistory,
	"LabelParameterVersion":   (*ssmFront).labelParameterVersion,
	"UnlabelParameterVersion": (*ssmFront).unlabelParameterVersion,
	"GetParametersByPath":     (*ssmFront).getParametersByPath,
	"DescribeParameters":      (*ssmFront).describeParameters,
	"AddTagsToResource":       (*ssmFront).addTags,
	"RemoveTagsFromResource":  (*ssmFront).removeTags,
	"ListTagsForResource":     (*ssmFront).listTags,
}

// ssmErr is an SSM error answer: its type (the SDK's error name) and
// message. errNotServed hands the request to kumo.
type ssmErr struct{ typ, msg string }

func (e *ssmErr) Error() string { return e.typ + ": " + e.msg }

var errNotServed = &ssmErr{typ: "notServed"}

func ssmFail(typ, format string, args ...any) error {
	return &ssmErr{typ: typ, msg: fmt.Sprintf(format, args...)}
}

func ssmInvalid(format string, args ...any) error {
	return ssmFail("ValidationException", format, args...)
}

// serve answers r when it is an SSM operation this front handles and
// reports whether it did; the rest goes to kumo through next.
func (s *ssmFront) serve(w http.ResponseWriter, r *http.Request, body []byte, next http.Handler) bool {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	if !ok {
		return false
	}
	h, ok := ssmHandlers[op]
	if !ok {
		next.ServeHTTP(w, r)
		return true
	}
	s.mu.Lock()
	out, err := h(s, body)
	s.mu.Unlock()
	var e *ssmErr
	switch {
	case err == nil:
	case errors.As(err, &e) && e == errNotServed:
		setBody(r, body)
		next.ServeHTTP(w, r)
		return true
	case e != nil:
		writeAWSError(w, r, http.StatusBadRequest, e.typ, e.msg)
		return true
	default:
		writeAWSError(w, r, http.StatusInternalServerError, "InternalServerError", err.Error())
		return true
	}
	smWrite(w, http.StatusOK, nil, smJSON(out))
	return true
}

// ssmDecode reads a request body; a malformed one is a ValidationException.
func ssmDecode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return ssmInvalid("Unable to parse the request body.")
	}
	return nil
}

// latest returns the parameter's newest version.
func (p *ssmParam) latest() *ssmVersion { return p.versions[len(p.versions)-1] }

// find returns the version numbered n, or nil.
func (p *ssmParam) find(n int64) *ssmVersion {
	for _, v := range p.versions {
		if v.version == n {
			return v
		}
	}
	return nil
}

// lookup finds a parameter by name or ARN.
func (s *ssmFront) lookup(nameOrARN string) *ssmParam {
	if rest, ok := strings.CutPrefix(nameOrARN, "arn:"); ok {
		if _, res, ok := strings.Cut(rest, ":parameter/"); ok {
			if p := s.params[res]; p != nil {
				return p
			}
			return s.params["/"+res]
		}
	}
	return s.params[nameOrARN]
}

// resolve reads a name that may carry a selector (":<version>" or
// ":<label>"): the parameter, the version selected (the latest without a
// selector) and the selector as AWS echoes it (":3", ":prod"; "" without).
func (s *ssmFront) resolve(ref string) (*ssmParam, *ssmVersion, string, error) {
	name, sel, hasSel := strings.Cut(ref, ":")
	if strings.HasPrefix(ref, "arn:") {
		// An ARN's own colons come before ":parameter/"; a name has none.
		name, sel, hasSel = ref, "", false
		if i, j := strings.LastIndex(ref, ":"), strings.Index(ref, ":parameter/"); j >= 0 && i > j {
			name, sel, hasSel = ref[:i], ref[i+1:], true
		}
	}
	p := s.lookup(name)
	if p == nil || hasSel && sel == "" {
		return nil, nil, "", ssmFail("ParameterNotFound", "Parameter %s not found.", ref)
	}
	if sel == "" {
		return p, p.latest(), "", nil
	}
	if n, err := strconv.ParseInt(sel, 10, 64); err == nil {
		v := p.find(n)
		if v == nil {
			return nil, nil, "", ssmFail("ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", n, p.name)
		}
		return p, v, ":" + sel, nil
	}
	for _, v := range p.versions {
		if slices.Contains(v.labels, sel) {
			return p, v, ":" + sel, nil
		}
	}
	return nil, nil, "", ssmFail("ParameterNotFound", "Parameter %s not found.", ref)
}

// arn returns the parameter's ARN (us-east-1, account 000000000000, as
// kumo's).
func (p *ssmParam) arn() string {
	return "arn:aws:ssm:us-east-1:000000000000:parameter/" + strings.TrimPrefix(p.name, "/")
}

// shownValue is v's value as a read shows it: SecureString decrypted only
// on request.
func (v *ssmVersion) shownValue(decrypt bool) string {
	if v.typ == ssmSecure && !decrypt {
		return v.ciphertext
	}
	return v.value
}

// ssmTime is a timestamp as JSON 1.1 carries it: epoch seconds.
func ssmTime(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// parameterOut is a Parameter in an answer.
func parameterOut(p *ssmParam, v *ssmVersion, selector string, decrypt bool) map[string]any {
	out := map[string]any{
		"Name": p.name, "Type": v.typ, "Value": v.shownValue(decrypt), "Version": v.version,
		"LastModifiedDate": ssmTime(v.modified), "ARN": p.arn(), "DataType": v.dataType,
	}
	if selector != "" {
		out["Selector"] = selector
	}
	return out
}

// getParameter serves GetParameter.
func (s *ssmFront) getParameter(body []byte) (any, error) {
	var in struct {
		Name           string
		WithDecryption bool
	}
	if err := ssmDecode(body, &in); err != nil {
		return nil, err
	}
	p, v, sel, err := s.resolve(in.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Parameter": parameterOut(p, v, sel, in.WithDecryption)}, nil
}

// getParameters serves GetParameters: what cannot be read is listed in
// InvalidParameters, as AWS lists it.
func (s *ssmFront) getParameters(body []byte) (any, error) {
	var in struct {
		Names          []string
		WithDecryption bool
	}
	if err := ssmDecode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Names) < 1 || len(in.Names) > 10 {
		return nil, ssmInvalid("1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1.")
	}
	params, invalid := []map[string]any{}, []string{}
	seen := map[string]bool{}
	for _, ref := range in.Names {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		if p, v, sel, err := s.resolve(ref); err == nil {
			params = append(params, parameterOut(p, v, sel, in.WithDecryption))
		} else {
			invalid = append(invalid, ref)
		}
	}
	return map[string]any{"Parameters": params, "InvalidParameters": invalid}, nil
}

// deleteParameter serves DeleteParameter: the parameter, its history and
// its tags go.
func (s *ssmFront) deleteParameter(body []byte) (any, error) {
	var in struct{ Name string }
	if err := ssmDecode(body, &in); err != nil {
		return nil, err
	}
	if s.params[in.Name] == nil {
		return nil, ssmFail("ParameterNotFound", "Parameter %s not found.", in.Name)
	}
	delete(s.params, in.Name)
	return map[string]any{}, nil
}

// deleteParameters serves DeleteParameters.
func (s *ssmFront) deleteParameters(body []byte) (any, error) {
	var in struct{ Names []string }
	if err := ssmDecode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Names) < 1 || len(in.Names) > 10 {
		return nil, ssmInvalid("1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1.")
	}
	deleted, invalid := []string{}, []string{}
	for _, n := range in.Names {
		if s.params[n] == nil {
			invalid = append(invalid, n)
			continue
		}
		delete(s.params, n)
		deleted = append(deleted, n)
	}
	return map[string]any{"DeletedParameters": deleted, "InvalidParameters": invalid}, nil
}

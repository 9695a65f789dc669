package testbed

import (
	"encoding/base64"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// PutParameter, as ssmFront describes it: AWS's checks of names, types,
// tiers and tags, and the version a write makes, with what the request
// omits kept from the latest version.

// ssmPutInput is PutParameter's request.
type ssmPutInput struct {
	Name, Value, Type, Description, KeyId string
	AllowedPattern, Tier, DataType        string
	Overwrite                             bool
	Tags                                  []smTag
}

// putParameter serves PutParameter.
func (s *ssmFront) putParameter(body []byte) (any, error) {
	var in ssmPutInput
	if err := ssmDecode(body, &in); err != nil {
		return nil, err
	}
	in.Name = strings.TrimSpace(in.Name)
	if err := checkParameterName(in.Name); err != nil {
		return nil, err
	}
	if in.Value == "" {
		return nil, ssmInvalid("1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.")
	}
	p := s.params[in.Name]
	if p != nil && !in.Overwrite {
		return nil, ssmFail("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	}
	if in.Overwrite && len(in.Tags) > 0 {
		return nil, ssmInvalid("Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags on an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.")
	}
	v, err := newParameterVersion(in, p)
	if err != nil {
		return nil, err
	}
	if p == nil {
		if err := checkTags(in.Tags); err != nil {
			return nil, err
		}
		p = &ssmParam{name: in.Name, tags: map[string]string{}}
		for _, t := range in.Tags {
			p.tags[t.Key] = t.Value
		}
	} else if len(p.versions) >= ssmMaxVersions {
		oldest := p.versions[0]
		if len(oldest.labels) > 0 {
			return nil, ssmFail("ParameterMaxVersionLimitExceeded",
				"You attempted to create a new version of %s by calling the PutParameter API with the overwrite flag. Version %d, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.",
				in.Name, oldest.version)
		}
		p.versions = slices.Delete(p.versions, 0, 1)
	}
	if s.params == nil {
		s.params = map[string]*ssmParam{}
	}
	s.params[in.Name] = p
	p.versions = append(p.versions, v)
	return map[string]any{"Version": v.version, "Tier": v.tier}, nil
}

// newParameterVersion builds the version PutParameter in writes over p
// (nil for a new parameter): what the request omits is kept from the
// latest version.
func newParameterVersion(in ssmPutInput, p *ssmParam) (*ssmVersion, error) {
	v := &ssmVersion{
		version: 1, typ: in.Type, value: in.Value, description: in.Description, keyID: in.KeyId,
		dataType: in.DataType, allowedPattern: in.AllowedPattern, tier: in.Tier, modified: time.Now(),
	}
	if p != nil {
		last := p.latest()
		v.version = last.version + 1
		if v.typ == "" {
			v.typ = last.typ
		}
		if v.description == "" {
			v.description = last.description
		}
		if v.keyID == "" && v.typ == last.typ {
			v.keyID = last.keyID
		}
		if v.dataType == "" {
			v.dataType = last.dataType
		}
		if v.allowedPattern == "" {
			v.allowedPattern = last.allowedPattern
		}
		if v.tier == "" || v.tier == "Intelligent-Tiering" && last.tier == ssmAdvanced {
			v.tier = last.tier
		}
		if last.tier == ssmAdvanced && v.tier == ssmStandard {
			return nil, ssmInvalid("This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.")
		}
	}
	switch v.typ {
	case "":
		return nil, ssmInvalid("You must specify a parameter type when creating a parameter.")
	case "String", "StringList", ssmSecure:
	default:
		return nil, ssmInvalid("1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", v.typ)
	}
	if v.typ != ssmSecure {
		v.keyID = ""
	} else if v.keyID == "" {
		v.keyID = ssmDefaultKeyID
	}
	if v.dataType == "" {
		v.dataType = "text"
	}
	n := utf8.RuneCountInString(v.value)
	switch v.tier {
	case "": // the account's default tier, Standard
		v.tier = ssmStandard
	case "Intelligent-Tiering":
		v.tier = ssmStandard
		if n > 4096 {
			v.tier = ssmAdvanced
		}
	case ssmStandard, ssmAdvanced:
	default:
		return nil, ssmInvalid("1 validation error detected: Value '%s' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]", v.tier)
	}
	switch {
	case v.tier == ssmStandard && n > 4096:
		return nil, ssmInvalid("Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html")
	case n > 8192:
		return nil, ssmInvalid("Advanced tier parameters support a maximum parameter value of 8192 characters.")
	}
	if v.typ == ssmSecure {
		v.ciphertext = base64.StdEncoding.EncodeToString(append([]byte{1, 2, 2, 0, 0x78}, randomBytes(150+len(v.value))...))
	}
	return v, nil
}

// checkParameterName returns AWS's refusal of name, or nil.
func checkParameterName(name string) error {
	const rules = `Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_`
	bare := strings.ToLower(strings.TrimPrefix(name, "/"))
	switch {
	case name == "" || utf8.RuneCountInString(name) > 1011:
		return ssmInvalid("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must have length between 1 and 1011.", name)
	case strings.HasPrefix(bare, "aws") || strings.HasPrefix(bare, "ssm"):
		return ssmInvalid("%s", rules)
	case strings.ContainsFunc(name, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.-/", c))
	}):
		return ssmInvalid("%s", rules)
	case strings.Contains(name, "/") && (!strings.HasPrefix(name, "/") || strings.Contains(name, "//") || strings.HasSuffix(name, "/")):
		return ssmInvalid("Parameter name must be a fully qualified name.")
	case strings.Count(name, "/") > ssmMaxDepth:
		return ssmFail("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html")
	}
	return nil
}

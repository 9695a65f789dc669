package testbed

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// Listings and tags of ssmFront's parameters, as AWS documents them:
//
//   - GetParametersByPath (Path from "/", Recursive, WithDecryption):
//     the latest version of each parameter under Path (one level, or all
//     with Recursive; a name without a leading slash is at the root), in
//     name order, MaxResults a page (1 to 10, default 10) with an opaque
//     NextToken. ParameterFilters Type and KeyId (Equals, BeginsWith);
//     Name, Path, Tier, DataType and tag: are InvalidFilterKey there, as on
//     AWS.
//   - DescribeParameters: metadata of the latest versions, in name order,
//     MaxResults a page (1 to 50, default 50), filtered by Filters (Name,
//     Type, KeyId; Equals) or ParameterFilters (Name with Equals,
//     BeginsWith or Contains; Type, KeyId, Tier, DataType with Equals or
//     BeginsWith; Path with OneLevel or Recursive; tag:<key>, any value or
//     one of Values), not both.
//   - AddTagsToResource, RemoveTagsFromResource, ListTagsForResource with
//     ResourceType Parameter and the parameter's name as ResourceId; an
//     unknown one is InvalidResourceId; at most 50 tags (TooManyTagsError);
//     keys and values checked as for Secrets Manager tags (checkTag), else
//     ValidationException. Other resource types go to kumo.
//
// Not modelled: the Label filter of GetParametersByPath (refused with
// InvalidFilterKey rather than ignored), Shared, and filters' limits on
// the number of values.
const (
	ssmPathMaxResults     = 10
	ssmDescribeMaxResults = 50
	ssmMaxTags            = 50
)

// ssmFilter is a ParameterStringFilter (or a legacy ParametersFilter).
type ssmFilter struct {
	Key, Option string
	Values      []string
}

// underPath reports whether the parameter name is under path (normalised,
// without a trailing slash but for the root), one level deep unless
// recursive.
func underPath(name, path string, recursive bool) bool {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	prefix := strings.TrimSuffix(path, "/") + "/"
	rest, ok := strings.CutPrefix(name, prefix)
	return ok && rest != "" && (recursive || !strings.Contains(rest, "/"))
}

// checkFilters refuses filters AWS refuses; allowed maps each key to its
// options ("tag:" for every tag key).
func checkFilters(filters []ssmFilter, allowed map[string][]string) error {
	seen := map[string]bool{}
	for _, f := range filters {
		key := f.Key
		if strings.HasPrefix(key, "tag:") {
			key = "tag:"
		}
		options, ok := allowed[key]
		if !ok {
			return ssmFail("InvalidFilterKey", "The following filter key is not valid: %s. Valid filter keys include: %v.", f.Key, slices.Sorted(maps.Keys(allowed)))
		}
		if seen[f.Key] {
			return ssmFail("InvalidFilterKey", "The following filter is duplicated in the request: %s. A request can contain only one occurrence of a specific filter.", f.Key)
		}
		seen[f.Key] = true
		if f.Option != "" && !slices.Contains(options, f.Option) {
			return ssmFail("InvalidFilterOption", "The following filter option is not valid: %s. Valid options include: %v.", f.Option, options)
		}
		if len(f.Values) == 0 && key != "tag:" {
			return ssmFail("InvalidFilterValue", "The following filter values are missing : null for filter key %s.", f.Key)
		}
	}
	return nil
}

// matchFilters reports whether the parameter (its latest version v)
// passes every filter.
func matchFilters(p *ssmParam, v *ssmVersion, filters []ssmFilter) bool {
	for _, f := range filters {
		var field string
		option := cmp.Or(f.Option, "Equals")
		switch {
		case f.Key == "Name":
			field = p.name
		case f.Key == "Type":
			field = v.typ
		case f.Key == "KeyId":
			field = v.keyID
		case f.Key == "Tier":
			field = v.tier
		case f.Key == "DataType":
			field = v.dataType
		case f.Key == "Path":
			if !slices.ContainsFunc(f.Values, func(path string) bool { return underPath(p.name, path, f.Option == "Recursive") }) {
				return false
			}
			continue
		case strings.HasPrefix(f.Key, "tag:"):
			val, ok := p.tags[strings.TrimPrefix(f.Key, "tag:")]
			if !ok || len(f.Values) > 0 && !slices.Contains(f.Values, val) {
				return false
			}
			continue
		}
		if !slices.ContainsFunc(f.Values, func(want string) bool {
			switch option {
			case "BeginsWith":
				return strings.HasPrefix(field, want)
			case "Contains":
				return strings.Contains(field, want)
			}
			return field == want
		}) {
			return false
		}
	}
	return true
}

// page returns the parameters matching keep, in name order, from after the
// name in token, at most size, and the token of the next page.
func (s *ssmFront) page(kind, token string, size int, keep func(*ssmParam) bool) ([]*ssmParam, string, error) {
	after := ""
	if token != "" {
		var ok bool
		if after, ok = ssmParseToken(kind, token); !ok {
			return nil, "", ssmFail("InvalidNextToken", "The specified token isn't valid.")
		}
	}
	var out []*ssmParam
	for _, name := range slices.Sorted(maps.Keys(s.params)) {
		if name <= after && token != "" || !keep(s.params[name]) {
			continue
		}
		if len(out) == size {
			return out, ssmToken(kind, out[len(out)-1].name), nil
		}
		out = append(out, s.params[name])
	}
	return out, "", nil
}

// getParametersByPath serves GetParametersByPath.
func (s *ssmFront) getParametersByPath(body []byte) (any, error) {
	var in struct {
		Path                      string
		Recursive, WithDecryption bool
		ParameterFilters          []ssmFilter
		MaxResults                *int
		NextToken                 string
	}
	if err := ssmDecode(body, &in); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(in.Path, "/") || strings.Contains(in.Path, "//") {
		return nil, ssmInvalid("The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".")
	}
	size, err := ssmPageSize(in.MaxResults, ssmPathMaxResults, ssmPathMaxResults)
	if err != nil {
		return nil, err
	}
	equalsOrBegins := []string{"Equals", "BeginsWith"}
	if err := checkFilters(in.ParameterFilters, map[string][]string{"Type": equalsOrBegins, "KeyId": equalsOrBegins}); err != nil {
		return nil, err
	}
	ps, next, err := s.page("path", in.NextToken, size, func(p *ssmParam) bool {
		return underPath(p.name, in.Path, in.Recursive) && matchFilters(p, p.latest(), in.ParameterFilters)
	})
	if err != nil {
		return nil, err
	}
	items := []map[string]any{}
	for _, p := range ps {
		items = append(items, parameterOut(p, p.latest(), "", in.WithDecryption))
	}
	out := map[string]any{"Parameters": items}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

// describeParameters serves DescribeParameters.
func (s *ssmFront) describeParameters(body []byte) (any, error) {
	var in struct {
		Filters, ParameterFilters []ssmFilter
		MaxResults                *int
		NextToken                 string
	}
	if err := ssmDecode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Filters) > 0 && len(in.ParameterFilters) > 0 {
		return nil, ssmInvalid("You can use either Filters or ParameterFilters in a single request.")
	}
	size, err := ssmPageSize(in.MaxResults, ssmDescribeMaxResults, ssmDescribeMaxResults)
	if err != nil {
		return nil, err
	}
	equalsOrBegins := []string{"Equals", "BeginsWith"}
	filters, allowed := in.ParameterFilters, map[string][]string{
		"Name": {"Equals", "BeginsWith", "Contains"}, "Type": equalsOrBegins, "KeyId": equalsOrBegins,
		"Tier": equalsOrBegins, "DataType": equalsOrBegins, "Path": {"OneLevel", "Recursive"}, "tag:": equalsOrBegins[:1],
	}
	if len(in.Filters) > 0 {
		filters, allowed = in.Filters, map[string][]string{"Name": nil, "Type": nil, "KeyId": nil}
	}
	if err := checkFilters(filters, allowed); err != nil {
		return nil, err
	}
	ps, next, err := s.page("describe", in.NextToken, size, func(p *ssmParam) bool { return matchFilters(p, p.latest(), filters) })
	if err != nil {
		return nil, err
	}
	items := []map[string]any{}
	for _, p := range ps {
		v := p.latest()
		item := map[string]any{
			"Name": p.name, "ARN": p.arn(), "Type": v.typ, "Version": v.version, "LastModifiedDate": ssmTime(v.modified),
			"LastModifiedUser": ssmModifiedByUser, "Tier": v.tier, "DataType": v.dataType, "Policies": []any{},
		}
		for k, val := range map[string]string{"Description": v.description, "KeyId": v.keyID, "AllowedPattern": v.allowedPattern} {
			if val != "" {
				item[k] = val
			}
		}
		items = append(items, item)
	}
	out := map[string]any{"Parameters": items}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

// checkTags returns AWS's refusal of a parameter's tags, or nil.
func checkTags(tags []smTag) error {
	if len(tags) > ssmMaxTags {
		return ssmFail("TooManyTagsError", "The Targets parameter includes too many tags. Remove one or more tags and try the command again.")
	}
	for _, t := range tags {
		if msg := checkTag(t); msg != "" {
			return ssmInvalid("%s", msg)
		}
	}
	return nil
}

// ssmTagInput is the request of the three tag operations.
type ssmTagInput struct {
	ResourceType, ResourceId string
	Tags                     []smTag
	TagKeys                  []string
}

// tagTarget reads a tag request about a parameter; errNotServed for other
// resource types.
func (s *ssmFront) tagTarget(body []byte) (ssmTagInput, *ssmParam, error) {
	var in ssmTagInput
	if err := ssmDecode(body, &in); err != nil {
		return in, nil, err
	}
	if in.ResourceType != "Parameter" {
		return in, nil, errNotServed
	}
	p := s.params[in.ResourceId]
	if p == nil {
		return in, nil, ssmFail("InvalidResourceId", "The resource ID \"%s\" is not valid. Verify the ID and try again.", in.ResourceId)
	}
	return in, p, nil
}

// addTags serves AddTagsToResource for parameters.
func (s *ssmFront) addTags(body []byte) (any, error) {
	in, p, err := s.tagTarget(body)
	if err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	merged := maps.Clone(p.tags)
	for _, t := range in.Tags {
		merged[t.Key] = t.Value
	}
	if len(merged) > ssmMaxTags {
		return nil, ssmFail("TooManyTagsError", "The Targets parameter includes too many tags. Remove one or more tags and try the command again.")
	}
	p.tags = merged
	return map[string]any{}, nil
}

// removeTags serves RemoveTagsFromResource for parameters.
func (s *ssmFront) removeTags(body []byte) (any, error) {
	in, p, err := s.tagTarget(body)
	if err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		delete(p.tags, k)
	}
	return map[string]any{}, nil
}

// listTags serves ListTagsForResource for parameters.
func (s *ssmFront) listTags(body []byte) (any, error) {
	_, p, err := s.tagTarget(body)
	if err != nil {
		return nil, err
	}
	tags := []smTag{}
	for _, k := range slices.Sorted(maps.Keys(p.tags)) {
		tags = append(tags, smTag{Key: k, Value: p.tags[k]})
	}
	return map[string]any{"TagList": tags}, nil
}

package testbed

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file parses and evaluates the Logs Insights queries insightsFront
// understands (see insightsFront for the shapes and the limits).

// insightsShapes names the query shapes the double understands, for errors.
const insightsShapes = "filter @message [not] like /RE/ [and @message [not] like /RE/ ...] " +
	"[| parse @message /(?<name>RE)/] | stats count(*) [as NAME] [by bin(Nm) | by name]"

// insightsPlan is a parsed query.
type insightsPlan struct {
	conds    []insightsCond
	parse    *regexp.Regexp
	countAs  string
	binField string        // "bin(5m)" when counting by bin
	bin      time.Duration // its size
	by       string        // a parsed field, when counting by it
}

// insightsCond is one "@message [not] like /RE/".
type insightsCond struct {
	re  *regexp.Regexp
	not bool
}

var (
	statsCommand = regexp.MustCompile(`^stats\s+count\(\*\)(?:\s+as\s+([A-Za-z_][A-Za-z0-9_]*))?(?:\s+by\s+(\S+))?$`)
	binSpec      = regexp.MustCompile(`^bin\((\d+)([smh])\)$`)
)

// parseInsightsQuery parses the shapes described on insightsFront.
func parseInsightsQuery(query string) (*insightsPlan, error) {
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("the testbed's Logs Insights double serves only queries shaped %s; %s", insightsShapes, fmt.Sprintf(format, args...))
	}
	commands, err := splitCommands(query)
	if err != nil {
		return nil, malformed("%v", err)
	}
	p := &insightsPlan{}
	for i, c := range commands {
		word, rest, _ := strings.Cut(c, " ")
		rest = strings.TrimSpace(rest)
		switch {
		case word == "filter" && i == 0:
			if p.conds, err = parseFilter(rest); err != nil {
				return nil, malformed("%v", err)
			}
		case word == "parse" && i == 1 && len(commands) == 3:
			src, ok := strings.CutPrefix(rest, "@message ")
			re, tail, err := regexLiteral(strings.TrimSpace(src))
			if !ok || err != nil || tail != "" {
				return nil, malformed("parse must read @message with one /regex/: %q", c)
			}
			if p.parse, err = regexp.Compile(re); err != nil {
				return nil, malformed("parse regex: %v", err)
			}
		case word == "stats" && i == len(commands)-1 && i > 0:
			m := statsCommand.FindStringSubmatch(c)
			if m == nil {
				return nil, malformed("stats must be count(*), optionally as NAME and by one field: %q", c)
			}
			p.countAs = m[1]
			if p.countAs == "" {
				p.countAs = "count(*)"
			}
			if err := p.setBy(m[2]); err != nil {
				return nil, malformed("%v", err)
			}
		default:
			return nil, malformed("command %d is %q", i+1, c)
		}
	}
	if p.countAs == "" {
		return nil, malformed("it must end with stats count(*)")
	}
	return p, nil
}

// setBy reads the "by" of a stats command.
func (p *insightsPlan) setBy(by string) error {
	if by == "" {
		return nil
	}
	if m := binSpec.FindStringSubmatch(by); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[m[2]]
		if n <= 0 {
			return fmt.Errorf("bin size must be positive: %s", by)
		}
		p.binField, p.bin = by, time.Duration(n)*unit
		return nil
	}
	if p.parse == nil || p.parse.SubexpIndex(by) < 0 {
		return fmt.Errorf("stats by %s: no parse extracts a field %s", by, by)
	}
	p.by = by
	return nil
}

// splitCommands splits a query at the pipes outside regex literals.
func splitCommands(query string) ([]string, error) {
	var commands []string
	start, inRegex := 0, false
	for i := 0; i < len(query); i++ {
		switch c := query[i]; {
		case c == '\\' && inRegex:
			i++
		case c == '/':
			inRegex = !inRegex
		case c == '|' && !inRegex:
			commands = append(commands, strings.TrimSpace(query[start:i]))
			start = i + 1
		}
	}
	if inRegex {
		return nil, fmt.Errorf("a regex is not closed")
	}
	commands = append(commands, strings.TrimSpace(query[start:]))
	for _, c := range commands {
		if c == "" {
			return nil, fmt.Errorf("an empty command")
		}
	}
	return commands, nil
}

// parseFilter parses "@message [not] like /RE/ [and ...]".
func parseFilter(s string) ([]insightsCond, error) {
	var conds []insightsCond
	for {
		rest, ok := strings.CutPrefix(s, "@message ")
		if !ok {
			return nil, fmt.Errorf("filter conditions must be on @message: %q", s)
		}
		rest = strings.TrimSpace(rest)
		var c insightsCond
		if after, ok := strings.CutPrefix(rest, "not "); ok {
			c.not, rest = true, strings.TrimSpace(after)
		}
		if rest, ok = strings.CutPrefix(rest, "like "); !ok {
			return nil, fmt.Errorf("filter conditions must be [not] like /regex/: %q", s)
		}
		re, tail, err := regexLiteral(strings.TrimSpace(rest))
		if err != nil {
			return nil, err
		}
		if c.re, err = regexp.Compile(re); err != nil {
			return nil, fmt.Errorf("filter regex: %w", err)
		}
		conds = append(conds, c)
		if tail == "" {
			return conds, nil
		}
		if s, ok = strings.CutPrefix(tail, "and "); !ok {
			return nil, fmt.Errorf("filter conditions must be joined with and: %q", tail)
		}
		s = strings.TrimSpace(s)
	}
}

// regexLiteral reads "/RE/" at the start of s and returns RE and what
// follows, trimmed.
func regexLiteral(s string) (string, string, error) {
	if !strings.HasPrefix(s, "/") {
		return "", "", fmt.Errorf("expected a /regex/ at %q", s)
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '/':
			return s[1:i], strings.TrimSpace(s[i+1:]), nil
		}
	}
	return "", "", fmt.Errorf("regex not closed: %q", s)
}

// run computes the query's rows and statistics over events.
func (p *insightsPlan) run(events []insightsEvent) ([][]insightsField, insightsStats) {
	var stats insightsStats
	counts := map[string]int{}
	var bins []int64
	for _, e := range events {
		stats.RecordsScanned++
		stats.BytesScanned += float64(len(e.Message))
		if !p.matches(e.Message) {
			continue
		}
		stats.RecordsMatched++
		switch {
		case p.bin > 0:
			size := p.bin.Milliseconds()
			b := e.Timestamp - ((e.Timestamp%size)+size)%size
			if counts[strconv.FormatInt(b, 10)] == 0 {
				bins = append(bins, b)
			}
			counts[strconv.FormatInt(b, 10)]++
		case p.by != "":
			m := p.parse.FindStringSubmatch(e.Message)
			if m == nil {
				continue
			}
			counts[m[p.parse.SubexpIndex(p.by)]]++
		default:
			counts[""]++
		}
	}
	rows := [][]insightsField{}
	switch {
	case p.bin > 0:
		slices.Sort(bins)
		for _, b := range bins {
			rows = append(rows, []insightsField{
				{Field: p.binField, Value: time.UnixMilli(b).UTC().Format("2006-01-02 15:04:05.000")},
				{Field: p.countAs, Value: strconv.Itoa(counts[strconv.FormatInt(b, 10)])},
			})
		}
	case p.by != "":
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if counts[a] != counts[b] {
				return counts[b] - counts[a]
			}
			return strings.Compare(a, b)
		})
		for _, k := range keys {
			rows = append(rows, []insightsField{{Field: p.by, Value: k}, {Field: p.countAs, Value: strconv.Itoa(counts[k])}})
		}
	default:
		rows = append(rows, []insightsField{{Field: p.countAs, Value: strconv.Itoa(counts[""])}})
	}
	return rows, stats
}

// matches applies the filter's conditions.
func (p *insightsPlan) matches(msg string) bool {
	for _, c := range p.conds {
		if c.re.MatchString(msg) == c.not {
			return false
		}
	}
	return true
}

package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// unknownKeys walks a decoded YAML document beside the Go type it decodes
// into and reports every mapping key no field takes, with its field path
// (apps[0].bogus_key) and the nearest known key as a suggestion. It never
// fails: nodes of an unexpected kind are left to the decoder to report.
func unknownKeys(n *yaml.Node, t reflect.Type, path string) []Problem {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode {
		var out []Problem
		for _, c := range n.Content {
			out = append(out, unknownKeys(c, t, path)...)
		}
		return out
	}
	if n.Kind == yaml.AliasNode {
		return nil // the anchor's own walk reports it
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // decodes itself (Duration)
	}
	var out []Problem
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			p := joinPath(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				msg := "unknown key"
				if s := nearest(k.Value, fields); s != "" {
					msg += " (did you mean " + s + "?)"
				}
				out = append(out, Problem{Path: p, Msg: msg})
				continue
			}
			out = append(out, unknownKeys(v, f, p)...)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			out = append(out, unknownKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, unknownKeys(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value))...)
		}
	}
	return out
}

// yamlFields maps a struct's YAML keys to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// nearest returns the known key closest to key by edit distance, or "" when
// none is close (at most a third of the key's length, and at least 2).
func nearest(key string, known map[string]reflect.Type) string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", max(2, len(key)/3)+1
	for _, k := range names {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes; keys are
// ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

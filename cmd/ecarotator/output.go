package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v3"
)

// Output formats of --output.
const (
	outTable = "table"
	outJSON  = "json"
	outYAML  = "yaml"
)

// outputFlags are --output table|json|yaml and its alias --json.
type outputFlags struct {
	format string
	asJSON bool
}

// add registers --output (-o) and --json on cmd.
func (o *outputFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", outTable, "output format: table, json or yaml")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "same as --output json")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{outTable, outJSON, outYAML}, cobra.ShellCompDirectiveNoFileComp
	})
}

// get returns the chosen format, or a usage error.
func (o *outputFlags) get(cmd *cobra.Command) (string, error) {
	switch o.format {
	case outTable, outJSON, outYAML:
	default:
		return "", usageError{fmt.Errorf("--output %q: want table, json or yaml", o.format)}
	}
	if o.asJSON {
		if cmd.Flags().Changed("output") && o.format != outJSON {
			return "", usageError{fmt.Errorf("--json and --output %s disagree", o.format)}
		}
		return outJSON, nil
	}
	return o.format, nil
}

// writeAs writes v as JSON or YAML. YAML follows the JSON encoding (the
// same field names, and secrets redacted by their MarshalJSON).
func writeAs(w io.Writer, format string, v any) error {
	if format == outYAML {
		return writeYAML(w, v)
	}
	return writeJSON(w, v)
}

// writeYAML writes v as one YAML document, through its JSON form.
func writeYAML(w io.Writer, v any) error {
	doc, err := jsonTree(v)
	if err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return enc.Close()
}

// jsonTree is v's JSON form as maps, slices and scalars (numbers kept
// exact).
func jsonTree(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return numbers(doc), nil
}

// numbers turns json.Number into int64 or float64 for the YAML encoder.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbers(x[k])
		}
	}
	return v
}

package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecarotator/ecarotator/internal/config"
	yaml "go.yaml.in/yaml/v3"
)

// ciExamples are the pipeline files of examples/ci with the config each
// one uses.
var ciExamples = []struct {
	pipeline, config, role string
}{
	{"../../examples/ci/github/rotate-salesforce-secrets.yml", "../../examples/ci/github/ecarotator.yaml", "../../examples/ci/github/vault-role.json"},
	{"../../examples/ci/gitlab/.gitlab-ci.yml", "../../examples/ci/gitlab/ecarotator.yaml", "../../examples/ci/gitlab/vault-role.json"},
}

// TestCIExamplesAreValid parses each pipeline file as YAML, finds every
// ecarotator command line in it and checks it against the real command
// tree (command, flags, arguments); loads and validates each example
// config; and checks that the Vault role grants the ecarotator policy and
// is the one vault-setup.sh writes for the config's mount and role.
func TestCIExamplesAreValid(t *testing.T) {
	setup, err := os.ReadFile("../../examples/ci/vault-setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range ciExamples {
		t.Run(filepath.Base(filepath.Dir(ex.pipeline)), func(t *testing.T) {
			raw, err := os.ReadFile(ex.pipeline)
			if err != nil {
				t.Fatal(err)
			}
			var doc any
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				t.Fatalf("%s does not parse: %v", ex.pipeline, err)
			}
			var lines [][]string
			walkScripts(doc, false, func(s string) { lines = append(lines, ecarotatorCommands(s)...) })
			if len(lines) == 0 {
				t.Fatalf("%s holds no ecarotator command line", ex.pipeline)
			}
			due := false
			for _, args := range lines {
				if err := checkCommandLine(args[1:]); err != nil {
					t.Errorf("%s: %q: %v", ex.pipeline, strings.Join(args, " "), err)
				}
				line := " " + strings.Join(args, " ") + " "
				if strings.Contains(line, " rotate ") && strings.Contains(line, " --due ") && strings.Contains(line, " --json ") {
					due = true
				}
			}
			if !due {
				t.Errorf("%s has no `ecarotator rotate --due --json` line", ex.pipeline)
			}

			cfg, err := config.Load(ex.config, func(string) string { return "" })
			if err != nil {
				t.Fatalf("%s: %v", ex.config, err)
			}
			if cfg.Vault.Auth.Method != "jwt" {
				t.Errorf("%s: vault.auth.method %q, want jwt", ex.config, cfg.Vault.Auth.Method)
			}
			if !strings.Contains(string(raw), cfg.Vault.Auth.JWT.TokenEnv) {
				t.Errorf("%s never sets %s, the config's vault.auth.jwt.token_env", ex.pipeline, cfg.Vault.Auth.JWT.TokenEnv)
			}
			want := "auth/" + cfg.Vault.Auth.JWT.Mount + "/role/" + cfg.Vault.Auth.JWT.Role + " @\"$here/" + filepath.Base(filepath.Dir(ex.role)) + "/vault-role.json\""
			if !strings.Contains(string(setup), want) {
				t.Errorf("vault-setup.sh does not write the config's role: want a line with %s", want)
			}

			var role struct {
				RoleType       string            `json:"role_type"`
				BoundAudiences []string          `json:"bound_audiences"`
				BoundClaims    map[string]string `json:"bound_claims"`
				TokenPolicies  []string          `json:"token_policies"`
			}
			b, err := os.ReadFile(ex.role)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &role); err != nil {
				t.Fatalf("%s: %v", ex.role, err)
			}
			if role.RoleType != "jwt" || len(role.BoundAudiences) == 0 || len(role.BoundClaims) == 0 || !contains(role.TokenPolicies, "ecarotator") {
				t.Errorf("%s: role %+v, want a jwt role with audiences, bound claims and the ecarotator policy", ex.role, role)
			}
			for _, aud := range role.BoundAudiences {
				if !strings.Contains(string(raw), aud) {
					t.Errorf("%s never asks for audience %s, which the role binds", ex.pipeline, aud)
				}
			}
		})
	}
}

// checkCommandLine parses args (after "ecarotator") with the real command
// tree: the subcommand must exist, its flags parse and its argument check
// pass.
func checkCommandLine(args []string) error {
	c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	root := c.rootCommand()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if cmd == root || !cmd.Runnable() {
		return errString("no runnable subcommand")
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	if cmd.Args != nil {
		return cmd.Args(cmd, cmd.Flags().Args())
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// scriptKeys hold shell: GitHub Actions' run, GitLab CI's script lists.
var scriptKeys = map[string]bool{"run": true, "script": true, "before_script": true, "after_script": true}

// walkScripts calls f with every shell snippet of a pipeline document.
func walkScripts(v any, inScript bool, f func(string)) {
	switch x := v.(type) {
	case string:
		if inScript {
			f(x)
		}
	case []any:
		for _, e := range x {
			walkScripts(e, inScript, f)
		}
	case map[string]any:
		for k, e := range x {
			walkScripts(e, scriptKeys[k], f)
		}
	}
}

// ecarotatorCommands returns the ecarotator command lines of a shell
// snippet: backslash continuations joined, comments dropped, each line cut
// at pipes, redirections and command separators, words split as the shell
// would for plain and quoted words.
func ecarotatorCommands(script string) [][]string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var out [][]string
	for _, line := range strings.Split(script, "\n") {
		words := shellWords(line)
		var cur []string
		flush := func() {
			if len(cur) > 0 && cur[0] == "ecarotator" {
				out = append(out, cur)
			}
			cur = nil
		}
		skipNext := false
		for _, w := range words {
			switch {
			case skipNext:
				skipNext = false
			case w == "|" || w == "||" || w == "&&" || w == ";":
				flush()
			case w == ">" || w == ">>" || w == "<" || w == "2>":
				skipNext = true
				flush()
			default:
				cur = append(cur, w)
			}
		}
		flush()
	}
	return out
}

// shellWords splits a line into words and operators; a '#' at a word start
// ends the line.
func shellWords(line string) []string {
	var words []string
	var b strings.Builder
	inWord, quote := false, rune(0)
	end := func() {
		if inWord {
			words = append(words, b.String())
			b.Reset()
			inWord = false
		}
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				b.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			end()
		case r == '#' && !inWord:
			end()
			return words
		case strings.ContainsRune("|&;<>", r):
			end()
			op := string(r)
			if i+1 < len(rs) && (rs[i+1] == r) {
				op += string(r)
				i++
			}
			words = append(words, op)
		default:
			b.WriteRune(r)
			inWord = true
		}
	}
	end()
	return words
}

// TestCheckCommandLineRefusesWhatTheCLIRefuses keeps the example check
// honest: it accepts real command lines and refuses broken ones.
func TestCheckCommandLineRefusesWhatTheCLIRefuses(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
	}{
		{"rotate --due --json", true},
		{"rotate --due --app billing,support", true},
		{"-c x.yaml rotate billing --reason test", true},
		{"config validate", true},
		{"rotate --due --bogus", false},
		{"rotate --due billing", false},
		{"rotate --app billing", false},
		{"rotat --due", false},
		{"config validate extra", false},
	}
	for _, tt := range tests {
		err := checkCommandLine(strings.Fields(tt.line))
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v, want ok=%t", tt.line, err, tt.ok)
		}
	}
	got := ecarotatorCommands("set -e\nVAR=\"$(x)\" ecarotator rotate --due --json | tee out.json # note\necho ecarotator\n  ecarotator config \\\n  validate > v.txt")
	want := [][]string{{"ecarotator", "config", "validate"}}
	if len(got) != 1 || strings.Join(got[0], " ") != strings.Join(want[0], " ") {
		t.Errorf("ecarotatorCommands = %q, want %q", got, want)
	}
}

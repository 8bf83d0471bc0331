package config

import (
	"fmt"
	"strings"
)

// Problem is one configuration problem at a field path such as
// "apps[2].schedule". Path is empty for file-level problems.
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// ProblemsError carries every problem found while loading a config.
type ProblemsError struct {
	Problems []Problem
}

func (e *ProblemsError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("invalid config (%d problem(s)):\n  %s", len(e.Problems), strings.Join(lines, "\n  "))
}

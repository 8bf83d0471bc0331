package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDoctorRejectsUnknownNamesAsUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"an unknown dev hub is a usage error", []string{"doctor", "-c", "../../configs/minimal.yaml", "--devhub", "nope"}, ExitUsage},
		{"an unknown app is a usage error", []string{"doctor", "-c", "../../configs/minimal.yaml", "--app", "nope"}, ExitUsage},
		{"a missing config is a config error", []string{"doctor", "-c", "/nonexistent.yaml"}, ExitConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.want, errOut)
			}
		})
	}
}

func TestPrintDoctorListsFixesObservationsAndVerdict(t *testing.T) {
	rep := doctorReport{Ready: false, Observed: map[string]string{"devhub/Billing: reads gated by the setting": "yes"}, Checks: []doctorRow{
		{DevHub: "devhub", Check: "login", Status: checkOK, Detail: "logged in"},
		{DevHub: "devhub", App: "billing", Check: "eca", Status: checkFail, Detail: "Packaged", Remediation: "use strategy: metadata"},
	}}
	var b bytes.Buffer
	printDoctor(&b, rep)
	out := b.String()
	for _, want := range []string{"STATUS", "FAIL    devhub  billing  eca", "To fix:", "eca billing: use strategy: metadata", "reads gated by the setting: yes", "\nnot ready\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDoctorStrategyPerDistribution(t *testing.T) {
	tests := []struct {
		configured, dist, want string
		ok                     bool
	}{
		{"auto", "Local", "staged", true},
		{"auto", "Packaged", "metadata", true},
		{"metadata", "Packaged", "metadata", true},
		{"metadata", "Local", "metadata", true},
		{"staged", "Local", "staged", true},
		{"staged", "Packaged", "staged", false},
	}
	for _, tt := range tests {
		got, why, ok := doctorStrategy(tt.configured, tt.dist)
		if got != tt.want || ok != tt.ok || why == "" {
			t.Errorf("doctorStrategy(%s, %s) = %s, %q, %v; want %s, %v", tt.configured, tt.dist, got, why, ok, tt.want, tt.ok)
		}
	}
}

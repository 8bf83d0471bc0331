// Command sfsim serves the Salesforce simulator (package sfsim) over HTTP for
// development, demos and integration tests:
//
//	sfsim -c salesforce/sfsim/testdata/demo.yaml [-state sim-state.json]
//	      [-host 127.0.0.1] [-login-port 9000] [-port devhub=9001 -port acme=9002]
//
// It prints the login URL and each org's My Domain and token URLs, serves
// the admin API under /__sfsim/ on every listener, and shuts down gracefully
// on SIGINT or SIGTERM (a second signal exits at once with status 130).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ecarotator/ecarotator/salesforce/sfsim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil)) }

// portFlags collects repeated -port org=port flags.
type portFlags map[string]int

func (p portFlags) String() string { return fmt.Sprint(map[string]int(p)) }

func (p portFlags) Set(v string) error {
	name, port, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(port)
	if !ok || name == "" || err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("want org=port, got %q", v)
	}
	p[name] = n
	return nil
}

// run is the whole program; it returns the exit code. ready, when not nil,
// receives the running simulator (tests use it to find the URLs).
func run(args []string, stdout, stderr io.Writer, ready chan<- *sfsim.Sim) int {
	fs := flag.NewFlagSet("sfsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "config file (strict YAML; required)")
	state := fs.String("state", "", "state file (JSON) that keeps the model across restarts; overrides stateFile")
	host := fs.String("host", "", "address to bind (default 127.0.0.1 or the config's host)")
	loginPort := fs.Int("login-port", -1, "login host port (default: the config's loginPort)")
	profile := fs.String("profile", "", "strict or lenient (overrides the config's profile; default strict)")
	ports := portFlags{}
	fs.Var(ports, "port", "org=port for an org's My Domain listener (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *cfgPath == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: sfsim -c config.yaml [flags]")
		fs.PrintDefaults()
		return 2
	}
	cfg, err := sfsim.LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "sfsim: %v\n", err)
		return 1
	}
	if *state != "" {
		cfg.StateFile = *state
	}
	if *host != "" {
		cfg.Host = *host
	}
	if *loginPort >= 0 {
		cfg.LoginPort = *loginPort
	}
	if *profile != "" {
		cfg.Profile = *profile
		if err := cfg.Validate(); err != nil {
			fmt.Fprintf(stderr, "sfsim: -profile: %v\n", err)
			return 2
		}
	}
	for name, port := range ports {
		found := false
		for i := range cfg.Orgs {
			if cfg.Orgs[i].Name == name {
				cfg.Orgs[i].Port, found = port, true
			}
		}
		if !found {
			fmt.Fprintf(stderr, "sfsim: -port %s: no such org\n", name)
			return 2
		}
	}
	sim, err := sfsim.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	if err := sim.Start(); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "login     %s  (token %s)\n", sim.LoginURL(), sim.TokenURL(sfsim.LoginHost))
	for _, name := range sim.Orgs() {
		fmt.Fprintf(stdout, "org %-8s %s  (token %s)\n", name, sim.OrgURL(name), sim.TokenURL(name))
	}
	fmt.Fprintf(stdout, "admin     %s/__sfsim/state\n", sim.LoginURL())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if ready != nil {
		ready <- sim
	}
	<-ctx.Done()
	// A second signal during shutdown exits at once.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	stop()
	fmt.Fprintln(stderr, "sfsim: shutting down")
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- errors.Join(sim.Shutdown(sctx), sim.Save())
	}()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintf(stderr, "sfsim: shutdown: %v\n", err)
			return 1
		}
		return 0
	case <-again:
		return 130
	}
}

//go:build integration

package integration

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecarotator/ecarotator/internal/vaulttest"
)

// TestDockerComposeStack runs docker-compose.yml for real: `up` with the
// images `make images` built, then waits through the published API for a
// scheduled rotation to succeed, checks that Vault (through its published
// port) holds the pair the API reports, runs `audit verify` inside the
// stack, and tears everything down with its volumes. The host ports are
// free ones chosen here, so the stack can run beside `make demo`. It skips
// without an engine, compose tool or images, and fails instead with
// ECAROTATOR_REQUIRE_DOCKER=1 (CI).
func TestDockerComposeStack(t *testing.T) {
	d := requireDocker(t)
	d.requireImages(t, "localhost/ecarotator:dev", "localhost/ecarotator-sfsim:dev", vaulttest.LocalImage)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	project := "ecarotator-it-" + hex.EncodeToString(suffix[:])
	ports := map[string]int{
		"VAULT_PORT": freeTCPPort(t), "ECAROTATOR_PORT": freeTCPPort(t),
		"SFSIM_LOGIN_PORT": freeTCPPort(t), "SFSIM_DEVHUB_PORT": freeTCPPort(t),
	}
	env := []string{"VAULT_IMAGE=" + vaulttest.LocalImage}
	for k, v := range ports {
		env = append(env, k+"="+strconv.Itoa(v))
	}
	compose := func(limit time.Duration, args ...string) (string, error) {
		all := append(d.compose[1:], append([]string{"-f", filepath.Join(root, "docker-compose.yml"), "--project-directory", root, "-p", project}, args...)...)
		return runCmd(t, limit, env, d.compose[0], all...)
	}
	t.Logf("engine %s, compose tool %q, project %s, ports %v", d.server, strings.Join(d.compose, " "), project, ports)

	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := compose(time.Minute, "logs", "--no-color", "--tail", "80")
			t.Logf("stack logs:\n%s", logs)
		}
		out, err := compose(3*time.Minute, "down", "--volumes", "--remove-orphans", "--timeout", "40")
		if err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
		left, _ := runCmd(t, 30*time.Second, nil, "docker", "ps", "-aq", "--filter", "label=com.docker.compose.project="+project)
		vols, _ := runCmd(t, 30*time.Second, nil, "docker", "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+project)
		if strings.TrimSpace(left+vols) != "" {
			t.Errorf("after down: containers %q, volumes %q remain", left, vols)
		} else {
			t.Logf("compose down: no container or volume of %s remains", project)
		}
	})
	start := time.Now()
	if out, err := compose(5*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	t.Logf("compose up -d returned after %s", time.Since(start).Round(time.Millisecond))
	ps, _ := runCmd(t, 30*time.Second, nil, "docker", "ps", "-a", "--filter", "label=com.docker.compose.project="+project,
		"--format", "{{.ID}} {{.Names}} {{.Image}} {{.Status}}")
	for _, line := range strings.Split(strings.TrimSpace(ps), "\n") {
		t.Logf("container %s", line)
	}

	hc := &http.Client{Timeout: 5 * time.Second}
	vaultURL := fmt.Sprintf("http://127.0.0.1:%d", ports["VAULT_PORT"])
	apiURL := fmt.Sprintf("http://127.0.0.1:%d", ports["ECAROTATOR_PORT"])
	var seal struct {
		Version string `json:"version"`
		Sealed  bool   `json:"sealed"`
	}
	if err := getJSON(hc, vaultURL+"/v1/sys/seal-status", "", &seal); err != nil || seal.Sealed || seal.Version == "" {
		t.Fatalf("vault through its published port: %+v %v", seal, err)
	}
	t.Logf("Vault %s answers through the published port %s", seal.Version, vaultURL)

	// The apps' schedules are @every 30s/50s/60s with a 5 s window: the
	// first rotation lands within about 35 s of the daemon's start.
	type app struct {
		Name         string    `json:"name"`
		ConsumerKey  string    `json:"consumer_key"`
		LastRotation time.Time `json:"last_rotation"`
		InFlight     bool      `json:"in_flight"`
		Orphaned     bool      `json:"orphaned"`
		LastError    string    `json:"last_error"`
		RotationID   string    `json:"rotation_id"`
		VaultVersion int       `json:"vault_version"`
	}
	var rotated app
	deadline := time.Now().Add(3 * time.Minute)
	for rotated.Name == "" {
		var list struct {
			Apps []app `json:"apps"`
		}
		err := getJSON(hc, apiURL+"/api/v1/apps", "demo-root-token", &list) // the read API needs a token with read on the status control path
		for _, a := range list.Apps {
			if a.Orphaned {
				t.Fatalf("app %s orphaned: %s", a.Name, a.LastError)
			}
			if !a.LastRotation.IsZero() && !a.InFlight && rotated.Name == "" {
				rotated = a
			}
		}
		if rotated.Name != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rotation seen through %s/api/v1/apps within 3 min (last answer %+v, err %v)", apiURL, list.Apps, err)
		}
		time.Sleep(time.Second) // polling the published API for a condition, with a deadline
	}
	if err := getJSON(hc, apiURL+"/api/v1/apps/"+rotated.Name, "demo-root-token", &rotated); err != nil {
		t.Fatalf("app detail: %v", err)
	}
	t.Logf("rotation seen through the published API %s: app %s rotated at %s, rotation %s, Vault KV version %d, consumer key %s (after %s)",
		apiURL, rotated.Name, rotated.LastRotation.Format(time.RFC3339), rotated.RotationID, rotated.VaultVersion, rotated.ConsumerKey, time.Since(start).Round(time.Second))
	if rotated.RotationID == "" {
		t.Errorf("app %s: no rotation id in the API's detail", rotated.Name)
	}
	if initial[rotated.Name].Key == rotated.ConsumerKey {
		t.Errorf("app %s: the API still reports the initial key after a rotation", rotated.Name)
	}

	// What applications read: the same key at the app's KV path.
	var kv struct {
		Data struct {
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	if err := getJSON(hc, vaultURL+"/v1/secret/data/salesforce/"+rotated.Name, "demo-root-token", &kv); err != nil {
		t.Fatalf("read the app's path through the published Vault port: %v", err)
	}
	if got := kv.Data.Data["consumer_key"]; got != rotated.ConsumerKey {
		// A later rotation may have landed between the two reads.
		if kv.Data.Data["previous_consumer_key"] != rotated.ConsumerKey {
			t.Errorf("Vault holds consumer_key %v, the API reported %s", got, rotated.ConsumerKey)
		}
	}

	out, err := compose(2*time.Minute, "exec", "-T", "ecarotator", "ecarotator", "-c", "/etc/ecarotator/compose.yaml", "audit", "verify")
	if err != nil || !strings.Contains(out, ": OK") {
		t.Fatalf("audit verify inside the stack: %v\n%s", err, out)
	}
	// configs/compose.yaml uses the transit keys that vault-init creates,
	// as production does, not the lab-mode KV key.
	if strings.Contains(out, "WEAKER lab mode") {
		t.Errorf("audit verify inside the stack reports the lab-mode KV key; compose.yaml should use transit:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		t.Logf("audit verify (in the ecarotator container): %s", line)
	}
	out, err = compose(2*time.Minute, "exec", "-T", "ecarotator", "ecarotator", "-c", "/etc/ecarotator/compose.yaml", "audit", "list")
	if err != nil || !strings.Contains(out, "rotation.succeeded") || !strings.Contains(out, rotated.RotationID) {
		t.Fatalf("audit list inside the stack: no rotation.succeeded for rotation %s (%v)\n%s", rotated.RotationID, err, out)
	}
}

// getJSON GETs url (with a Vault token when given) and decodes a 200 answer.
func getJSON(hc *http.Client, url, token string, v any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.Unmarshal(body, v)
}

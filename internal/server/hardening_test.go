package server

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestServerBoundsSlowAndLargeRequests: review L11. A client that never
// finishes its headers is disconnected after ReadTimeout; headers over
// MaxHeaderBytes get 431; a body over MaxBodyBytes gets 413.
func TestServerBoundsSlowAndLargeRequests(t *testing.T) {
	var seen []string
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: zap.NewNop(), ReadTimeout: 200 * time.Millisecond,
		Controller: &fakeController{}, Authorizer: authorizer(&seen, nil), MaxBodyBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := s.Addr().String()

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	// The server must close the half-sent request; 10 s is the test's
	// deadline, far above the 200 ms bound.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err == nil {
		// A 408 answer is fine too; then the connection closes.
		_, _ = bufio.NewReader(conn).ReadString(0)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a slow header kept its connection past the read timeout")
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", MaxHeaderBytes+4096))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: %d, want 431", resp.StatusCode)
	}

	req, _ = http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/apps/billing/rotate", strings.NewReader(`{"reason":"`+strings.Repeat("a", 4096)+`"}`))
	req.Header.Set("X-Vault-Token", operatorToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", resp.StatusCode)
	}
}

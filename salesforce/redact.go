package salesforce

import (
	"fmt"
)

// Format prints Auth with its key material redacted, for every verb, so
// that %+v of an Options (or of a config holding one) cannot leak the private
// key: an *rsa.PrivateKey would otherwise print its primes.
func (a Auth) Format(f fmt.State, _ rune) {
	key := ""
	if a.Key != nil || !a.PrivateKey.IsZero() {
		key = redacted
	}
	secret := ""
	if !a.ClientSecret.IsZero() {
		secret = redacted
	}
	fmt.Fprintf(f, "{Method:%s ClientID:%s Username:%s PrivateKey:%s ClientSecret:%s Basic:%t}", a.Method, a.ClientID, a.Username, key, secret, a.Basic)
}

// Format prints a Client as its org and API version only.
func (c *Client) Format(f fmt.State, _ rune) {
	if c == nil {
		fmt.Fprint(f, "salesforce.Client(nil)")
		return
	}
	fmt.Fprintf(f, "salesforce.Client{org:%s version:%s auth:%s}", c.opts.Org, c.version, c.opts.Auth.Method)
}

const redacted = "<redacted>"

package salesforce

import (
	"strconv"
	"strings"

	"github.com/ecarotator/ecarotator/rotator"
)

// LimitInfoHeader is the response header carrying the org's API usage.
const LimitInfoHeader = "Sforce-Limit-Info"

// ParseLimitInfo parses a Sforce-Limit-Info header value such as
// "api-usage=10018/100000" or "api-usage=18/5000; api-bursts=1/750" and
// returns the api-usage part (At is left zero for the caller to stamp). It
// reports false when no well-formed api-usage entry is present. Unknown
// entries (api-bursts, per-app-api-usage …) are ignored.
func ParseLimitInfo(v string) (rotator.APIUsage, bool) {
	for part := range strings.SplitSeq(v, ";") {
		for item := range strings.SplitSeq(part, ",") {
			name, val, ok := strings.Cut(strings.TrimSpace(item), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "api-usage") {
				continue
			}
			used, limit, ok := parseFraction(val)
			if !ok {
				return rotator.APIUsage{}, false
			}
			return rotator.APIUsage{Used: used, Limit: limit}, true
		}
	}
	return rotator.APIUsage{}, false
}

// parseFraction parses "N/M" with 0 ≤ N and 0 < M.
func parseFraction(s string) (n, m int, ok bool) {
	a, b, found := strings.Cut(strings.TrimSpace(s), "/")
	if !found {
		return 0, 0, false
	}
	n, err1 := strconv.Atoi(strings.TrimSpace(a))
	m, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || n < 0 || m <= 0 {
		return 0, 0, false
	}
	return n, m, true
}

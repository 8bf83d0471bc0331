package rotator

import (
	"hash/fnv"
	"time"
)

// SlotStart is when an app's run for slot starts: a stable offset inside
// [slot, slot+window). It is derived from the app name and the slot rather
// than drawn at random so every replica computes the same start and a
// restart does not move it.
func SlotStart(app string, slot time.Time, window time.Duration) time.Time {
	if window <= 0 || slot.IsZero() {
		return slot
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(app))
	_, _ = h.Write([]byte(slot.UTC().Format(time.RFC3339)))
	return slot.Add(time.Duration(h.Sum64() % uint64(window)))
}

// PreviousValidUntil is how long the previous pair stays in Vault after a
// rotation at rotatedAt. stagedExpires is the Rotated slot's expiration as
// Salesforce reports it (zero when unknown). The zero time means "drop the
// previous pair now" (immediate). The result never outlives the Rotated
// slot, because Salesforce stops accepting the pair then.
func PreviousValidUntil(o Overlap, rotatedAt, stagedExpires time.Time) time.Time {
	lapse := stagedExpires
	if lapse.IsZero() {
		lapse = rotatedAt.Add(SalesforceOverlap)
	}
	switch o.Policy {
	case OverlapImmediate:
		return time.Time{}
	case OverlapAfter:
		if t := rotatedAt.Add(o.After); t.Before(lapse) {
			return t
		}
		return lapse
	default:
		return lapse
	}
}

package rotator

import "context"

// LeaseJournal is implemented by a Journal that keeps an app's journal in
// the same record as the app's lease (the Vault adapter): ending a
// rotation then takes one request instead of a clear and a release. The
// engine uses it when the Journal has it.
type LeaseJournal interface {
	// ClearAndRelease removes app's journal and gives back lease l (the
	// app lease, "app/<app>"); ErrFenced when l is no longer held.
	ClearAndRelease(ctx context.Context, app string, l Lease) error
}

package server

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"fieldtip/protocol"
	"fieldtip/storage"
)

// Slots cost what they hold (issue 11). Every unfinished upload the store
// holds is a slot: a row until it finishes, expires or is evicted. How
// long a slot is kept after its last progress grows with the bytes it had
// acknowledged (uploadLifetime): one that acknowledged nothing lasts
// StallTimeout (minutes), one that acknowledged 64 KiB or more
// (fullLifetimeBytes: one proof of work's worth, half a photo) lasts
// UploadExpiry (a week), and those between in proportion. So holding a
// slot for long costs what sending its bytes costs, and an attacker who
// opens uploads and sends nothing holds each for minutes. When the store
// holds MaxUnfinishedUploads, a new upload evicts the stalled slot (not
// open on a connection) that acknowledged the fewest bytes, instead of
// being refused; and when a frame does not fit in MaxStagingBytes, the
// stalled slots with the least progress make room for it.
//
// The times live in memory only: nothing finer than a day is stored
// (DESIGN.md §2), so after a restart every slot's clock starts again from
// the restart, and the day-precision expiry in the store (Config.
// UploadExpiry plus its spread) stays the upper bound.

// fullLifetimeBytes is the progress at which a slot gets the whole
// UploadExpiry: one proof of work's 64 KiB.
const fullLifetimeBytes = protocol.PoWChunkSize

// uploadLifetime is how long after its last progress an upload that had
// received bytes acknowledged is kept: StallTimeout, plus the rest of
// UploadExpiry in proportion to received, up to fullLifetimeBytes.
func (s *Server) uploadLifetime(received int64) time.Duration {
	lo, hi := s.cfg.StallTimeout, s.cfg.UploadExpiry
	r := min(max(received, 0), fullLifetimeBytes)
	return lo + time.Duration(float64(hi-lo)*float64(r)/float64(fullLifetimeBytes))
}

// slots is the server's table of unfinished uploads (the package comment
// above).
type slots struct {
	mu sync.Mutex
	m  map[protocol.UploadID]*slot
	// checking are the ids whose upload message a session is checking
	// (claim).
	checking map[protocol.UploadID]bool
}

type slot struct {
	// received is the bytes acknowledged; progress when the slot last
	// progressed (opened, frames acknowledged) or the server started,
	// by the server's clock.
	received int64
	progress time.Time
	// held is set while a connection holds the upload (and while it is
	// being opened): a held slot is never stalled.
	held bool
}

func newSlots() *slots {
	return &slots{m: map[protocol.UploadID]*slot{}, checking: map[protocol.UploadID]bool{}}
}

// claim reserves id for the session about to check its upload message: it
// reports false if another session checks it, or if it has a slot (an
// upload open or stored under it: a replay).
func (t *slots) claim(id protocol.UploadID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.checking[id] || t.m[id] != nil {
		return false
	}
	t.checking[id] = true
	return true
}

// unclaim ends a claim.
func (t *slots) unclaim(id protocol.UploadID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.checking, id)
}

// load replaces the table with the store's unfinished uploads, each
// progressing now (the server started).
func (t *slots) load(ps []storage.UploadProgress, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m = make(map[protocol.UploadID]*slot, len(ps))
	for _, p := range ps {
		t.m[p.ID] = &slot{received: p.Received, progress: now}
	}
}

// sync brings the table in line with the store: slots whose upload is gone
// (expired, deleted by `fieldtipd uploads --drop-stalled`) leave unless
// held, and uploads the table lacks join, progressing now.
func (t *slots) sync(ps []storage.UploadProgress, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	stored := make(map[protocol.UploadID]bool, len(ps))
	for _, p := range ps {
		stored[p.ID] = true
		if t.m[p.ID] == nil {
			t.m[p.ID] = &slot{received: p.Received, progress: now}
		}
	}
	for id, sl := range t.m {
		if !stored[id] && !sl.held {
			delete(t.m, id)
		}
	}
}

// count is the number of slots.
func (t *slots) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// reserve takes a slot for a new upload, held. At max slots it evicts the
// stalled one with the least progress (the longest without progress
// among equals) and returns its id, which the caller deletes with its
// open; with none stalled it returns ok false.
func (t *slots) reserve(id protocol.UploadID, max int, now time.Time) (evict *protocol.UploadID, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[id] != nil {
		return nil, false
	}
	if len(t.m) >= max {
		var victim protocol.UploadID
		var best *slot
		for vid, sl := range t.m {
			if sl.held {
				continue
			}
			if best == nil || sl.received < best.received || (sl.received == best.received && sl.progress.Before(best.progress)) {
				victim, best = vid, sl
			}
		}
		if best == nil {
			return nil, false
		}
		delete(t.m, victim)
		evict = &victim
	}
	t.m[id] = &slot{progress: now, held: true}
	return evict, true
}

// takeForSpace removes and returns stalled slots (not held, never except),
// least progress first, the longest without progress among equals, until
// their bytes acknowledged reach need; ok false (and nothing taken) if
// all the stalled ones hold less.
func (t *slots) takeForSpace(need int64, except protocol.UploadID) (ids []protocol.UploadID, freed int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	type cand struct {
		id protocol.UploadID
		sl *slot
	}
	var cs []cand
	var total int64
	for id, sl := range t.m {
		if !sl.held && id != except && sl.received > 0 {
			cs = append(cs, cand{id, sl})
			total += sl.received
		}
	}
	if total < need {
		return nil, 0, false
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if c := cmp.Compare(a.sl.received, b.sl.received); c != 0 {
			return c
		}
		return a.sl.progress.Compare(b.sl.progress)
	})
	for _, c := range cs {
		if freed >= need {
			break
		}
		ids = append(ids, c.id)
		freed += c.sl.received
		delete(t.m, c.id)
	}
	return ids, freed, true
}

// hold marks a stored upload's slot held by a connection (a resume); it
// reports false if the table has no slot for it (evicted, or stalled and
// being deleted).
func (t *slots) hold(id protocol.UploadID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	sl := t.m[id]
	if sl == nil {
		return false
	}
	sl.held = true
	return true
}

// release marks a slot no longer held: from now its lifetime counts.
func (t *slots) release(id protocol.UploadID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sl := t.m[id]; sl != nil {
		sl.held = false
	}
}

// progressed records that a slot's upload had received bytes acknowledged.
func (t *slots) progressed(id protocol.UploadID, received int64, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sl := t.m[id]; sl != nil {
		sl.received = received
		sl.progress = now
	}
}

// remove forgets a slot: its upload was committed, deleted, or never
// opened.
func (t *slots) remove(id protocol.UploadID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
}

// takeStalled removes and returns the slots not held whose lifetime since
// their last progress has run out: the caller deletes their uploads. A
// resume that comes after finds no slot (not_found).
func (t *slots) takeStalled(now time.Time, lifetime func(int64) time.Duration) []protocol.UploadID {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []protocol.UploadID
	for id, sl := range t.m {
		if !sl.held && !now.Before(sl.progress.Add(lifetime(sl.received))) {
			out = append(out, id)
			delete(t.m, id)
		}
	}
	return out
}

// stallSweepInterval is how often the server deletes stalled uploads: a
// slot outlives its lifetime by at most this.
const stallSweepInterval = time.Minute

// sweepStalled deletes the uploads whose slots stalled past their
// lifetime, by the server's clock.
func (s *Server) sweepStalled(ctx context.Context) {
	ids := s.slots.takeStalled(s.now(), s.uploadLifetime)
	if len(ids) == 0 {
		return
	}
	del := make([][16]byte, len(ids))
	for i, id := range ids {
		del[i] = id
	}
	n, err := s.store.DeleteUploads(ctx, del)
	if err != nil && ctx.Err() == nil {
		s.log.Error("delete stalled uploads", attrErr, err)
	}
	if n > 0 {
		s.log.Info("deleted stalled uploads", attrCount, n)
	}
	s.resyncStaging(ctx)
}

// makeStagingRoom deletes stalled uploads, least progress first, until
// need more bytes fit in the staging space; it reports whether they do.
// Staging space, like slots, goes to uploads that progress: a full staging
// space of stalled uploads must not refuse every new frame.
func (s *Server) makeStagingRoom(ctx context.Context, need int64, except protocol.UploadID) bool {
	over := s.staging.Load() + need - s.cfg.MaxStagingBytes
	if over <= 0 {
		return true
	}
	ids, freed, ok := s.slots.takeForSpace(over, except)
	if !ok {
		return false
	}
	del := make([][16]byte, len(ids))
	for i, id := range ids {
		del[i] = id
	}
	if _, err := s.store.DeleteUploads(ctx, del); err != nil {
		s.log.Error("evict stalled uploads", attrErr, err)
		return false
	}
	s.staging.Add(-freed)
	s.log.Info("evicted stalled uploads for staging space", attrCount, len(ids))
	return true
}

// resyncStaging sets the staging count from the store. Sessions count
// their own frames as they go; this catches up with what was deleted. A
// session between its count and its write can make it low until the next
// resync.
func (s *Server) resyncStaging(ctx context.Context) {
	if _, staged, err := s.store.Staged(ctx); err == nil {
		s.staging.Store(staged)
	}
}

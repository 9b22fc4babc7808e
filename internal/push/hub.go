package push

import (
	"maps"
	"slices"
	"sync"

	"github.com/eventsidecar/sidecar/internal/content"
)

// hub knows which watchers watch which content.
type hub struct {
	mu       sync.Mutex
	watchers map[string]map[*watcher]struct{}
}

func newHub() *hub {
	return &hub{watchers: make(map[string]map[*watcher]struct{})}
}

// add makes w a watcher of id.
func (h *hub) add(id string, w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := h.watchers[id]
	if ws == nil {
		ws = make(map[*watcher]struct{})
		h.watchers[id] = ws
	}
	ws[w] = struct{}{}
}

// remove forgets w for every id it watches.
func (h *hub) remove(w *watcher, ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		ws := h.watchers[id]
		delete(ws, w)
		if len(ws) == 0 {
			delete(h.watchers, id)
		}
	}
}

// publish offers st to every watcher of its content. It never blocks on
// a watcher: offers only replace a watcher's pending status.
func (h *hub) publish(st content.Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers[st.ContentID] {
		w.offer(st)
	}
}

// watched returns the ids that have watchers.
func (h *hub) watched() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Collect(maps.Keys(h.watchers))
}

// watcher is one client's statuses to send: the latest offered status per
// content, and the contents whose latest status is not sent yet, in the
// order they changed.
type watcher struct {
	mu sync.Mutex
	// watching are the contents the client asked for.
	watching map[string]bool
	// latest is the newest status offered per watched content.
	latest map[string]content.Status
	// queue holds the contents with an unsent status, each once.
	queue  []string
	queued map[string]bool
	// errs are error messages to send, bounded by maxErrors.
	errs []errorMessage
	wake chan struct{}
}

const maxErrors = 16

func newWatcher() *watcher {
	return &watcher{watching: make(map[string]bool), latest: make(map[string]content.Status),
		queued: make(map[string]bool), wake: make(chan struct{}, 1)}
}

// watch records that the client watches id. It reports whether id is
// new, and refuses (ok false) a new id beyond limit.
func (w *watcher) watch(id string, limit int) (added, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watching[id] {
		return false, true
	}
	if len(w.watching) >= limit {
		return false, false
	}
	w.watching[id] = true
	return true, true
}

// offer queues st unless the client has, or is about to get, a status of
// the content at the same version or later.
func (w *watcher) offer(st content.Status) {
	w.mu.Lock()
	old, known := w.latest[st.ContentID]
	if known && st.Version <= old.Version {
		w.mu.Unlock()
		return
	}
	w.latest[st.ContentID] = st
	if !w.queued[st.ContentID] {
		w.queued[st.ContentID] = true
		w.queue = append(w.queue, st.ContentID)
	}
	w.mu.Unlock()
	w.notify()
}

// fail queues an error message; beyond maxErrors unsent ones it is
// dropped.
func (w *watcher) fail(id, msg string) {
	w.mu.Lock()
	if len(w.errs) < maxErrors {
		w.errs = append(w.errs, errorMessage{Type: "error", ContentID: id, Message: msg})
	}
	w.mu.Unlock()
	w.notify()
}

func (w *watcher) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next returns the next message to send, or nil.
func (w *watcher) next() any {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) > 0 {
		e := w.errs[0]
		w.errs = w.errs[1:]
		return e
	}
	if len(w.queue) == 0 {
		return nil
	}
	id := w.queue[0]
	w.queue = w.queue[1:]
	delete(w.queued, id)
	return statusMessage{Type: "status", Status: w.latest[id]}
}

// ids returns the contents w watches.
func (w *watcher) ids() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Collect(maps.Keys(w.watching))
}

// statusMessage is a status as sent to a client.
type statusMessage struct {
	Type string `json:"type"`
	content.Status
}

// errorMessage is a failed watch as sent to a client.
type errorMessage struct {
	Type      string `json:"type"`
	ContentID string `json:"content_id,omitempty"`
	Message   string `json:"message"`
}

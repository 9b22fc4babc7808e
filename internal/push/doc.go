// Package push is the push service: it watches the event flow and pushes
// every status change of a piece of content (PENDING, then ANALYZED with
// the analysis result) to the WebSocket clients that asked for that
// content, so that an app shows "under review" and then the result
// without polling. It also serves a small status page that submits text
// through the Laravel API and shows the status live.
//
// # Where statuses come from
//
// Live changes come from a subscription without a group: every push
// service instance needs every event, as its clients may watch any
// content. It starts at the end of the topic and, after a lost
// connection to the sidecar, resumes at the positions it had reached, so
// nothing appended meanwhile is missed.
//
// A client that starts watching gets the content's current status first.
// The service reads it from the sidecar (ReadStream of the content's
// stream, folded with the same rules as the projector), not from the
// projector's table: the status then never lags behind the live changes
// the client gets next, and the push service needs no database. Reading
// one stream costs about the stream's own length, two events for a
// content. Statuses of one content are ordered by stream version; a
// client is sent a status only when it is newer than the last it got, so
// the current status and a live change that cross each other arrive in
// version order, once.
//
// # The WebSocket protocol
//
// GET /ws upgrades to a WebSocket. The client names the contents it
// watches with text messages {"watch":"<content id>"}, or with watch
// query parameters on the URL. The service sends a text message per
// status:
//
//	{"type":"status","content_id":"...","status":"PENDING","version":1,
//	 "updated_at":"2026-01-01T00:00:00Z"}
//	{"type":"status","content_id":"...","status":"ANALYZED","version":2,
//	 "analysis":{"entities":[["Paris","GPE"]],"is_toxic":false,"token_count":5},
//	 "updated_at":"..."}
//
// A content id without events has the status UNKNOWN (version 0) until
// its first event. {"type":"error","content_id":"...","message":"..."}
// reports a watch that failed. A client that reads slowly is sent only
// the latest status of each content it watches.
//
// # The status page
//
// GET / serves the page (embedded HTML and JavaScript, no build step).
// POST /submit forwards a submission to the Laravel API's POST /content,
// so that the page's requests stay on its own origin and need no CORS.
//
// # Limitations
//
//   - A status change is pushed once the push service's subscription sees
//     it; a client that connects to another instance than the one its
//     change reached still gets it, as every instance reads every event.
//   - After a lost connection to the sidecar before the first caught-up
//     marker, the service starts again at the end of the topic and
//     re-reads the current status of every watched content.
package push

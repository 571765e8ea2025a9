package protocol

// The editorial log's endpoints (docs/log.md), served on the public
// listener beside the editors' endpoint. The read endpoints are C2SP
// tlog-tiles, open to anyone; POST /event takes an editor's session:
//
//	GET  /checkpoint                   → the latest signed checkpoint (C2SP tlog-checkpoint)
//	GET  /tile/<L>/<N>[.p/<W>]         → a hash tile (C2SP tlog-tiles)
//	GET  /tile/entries/<N>[.p/<W>]     → an entry bundle (C2SP tlog-tiles)
//	GET  /event-body/<index>           → the encrypted body of the event at index
//	POST /event  (event request)       → the event's inclusion proof (C2SP tlog-proof)
//
// An event request is the signed event entry with a 2-byte big-endian
// length before it (as in an entry bundle), then the body's age file to the
// end of the request.
const (
	PathCheckpoint  = "/checkpoint"
	PathTiles       = "/tile/"
	PathEntryTiles  = "/tile/entries/"
	PathEventBodies = "/event-body/"
	PathEvent       = "/event"
)

// Package witness is a transparency-log witness for the control plane's audit log, and
// the client the log uses to reach one. It follows C2SP tlog-witness: a log POSTs
// add-checkpoint with its new checkpoint and an RFC 6962 consistency proof from the
// size the witness last cosigned; the witness checks the log's signature, the proof
// (golang.org/x/mod/sumdb/tlog), persists the new size and root, and answers with a C2SP
// tlog-cosignature/v1 (audit.CosignatureSigner). It refuses a checkpoint smaller than,
// or not consistent with, the one it holds (409, 422), so a log truncated or rolled back
// behind the control plane's back can no longer be cosigned, and the witness's own
// store — outside the control plane's database — keeps the newest size an auditor's
// `warden audit verify` must find.
//
// Beyond the spec, GET <prefix>/checkpoint?origin=ORIGIN answers the newest cosigned
// checkpoint of a log (the spec leaves monitor retrieval open); verify reads it.
package witness

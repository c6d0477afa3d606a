// Package audit is Warden's tamper-evident audit log. Every gate decision and every
// lifecycle change of the control plane is an Event; the log stores each event's canonical
// bytes as one record of an append-only Merkle tree that follows Certificate Transparency
// (RFC 6962) through golang.org/x/mod/sumdb/tlog, and the control plane signs checkpoints
// of that tree as signed notes (golang.org/x/mod/sumdb/note, the C2SP tlog-checkpoint
// text). Nobody can change, drop or reorder a record without Verify naming the index.
//
// The calls the server and the gate make:
//
//	st, _ := audit.NewSQLite(ctx, db)        // or audit.NewPostgres(ctx, db); shares db
//	signer, verifier, _ := audit.LoadOrCreateKeys(dataDir+"/audit", audit.NoteName(td))
//	log, _ := audit.Open(ctx, audit.Config{Storage: st, Signer: signer, CheckpointInterval: time.Minute})
//	rcpt, err := log.Append(ctx, ev)          // returns when durable (group commit)
//	cp, err := log.Checkpoint(ctx)            // sign and store a checkpoint now
//	p, err := log.Proof(ctx, id)              // inclusion proof against the latest checkpoint
//	rep, err := audit.Verify(ctx, st, verifier) // *FaultError names the first bad index
//
// A gate spools its events locally and ships them to the control plane:
//
//	sp, _ := audit.OpenSpool(audit.SpoolConfig{Dir: dataDir + "/spool"})
//	err := sp.Append(ctx, ev, audit.Sync)     // audit.Batched for read-only actions
//	go sp.Run(ctx, sink)                      // sink: one-method Sink; the server uses LogSink
//	depth := sp.Depth()                       // for the spool-depth metric
//
// Anomaly signals: NewDetector(DetectorConfig{Emit: ...}).Observe(ev) for every event;
// Emit receives KindAnomaly events to append (and to trigger re-attestation).
//
// Storage keeps three tables, audit_records (index, id, filter columns, canonical bytes),
// audit_hashes (tlog stored hashes, so proofs read O(log n) rows) and audit_checkpoints.
package audit

package server_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/warden-a2a/warden/internal/api"
	"github.com/warden-a2a/warden/internal/truststate"
)

// BenchmarkAttestationFailureToFollower measures, per iteration, the time from the start
// of a renewal whose evidence fails appraisal (a read-only agent whose binary changed:
// tampered_binary -> quarantine; the TPM quote on the simulator is included) until a
// truststate.Follower — what a gate runs — has verified the trust-state version carrying
// the new result. Baseline in the same run: an operator's quarantine call until the
// follower has it (the trust-state push path alone).
//
//	go test -run '^$' -bench AttestationFailureToFollower -benchtime 200x ./internal/server/
func BenchmarkAttestationFailureToFollower(b *testing.B) {
	f := start(b, options{att: attestOn()})
	a := f.attestedEntry(b, "bench-reader", "read-only", "catalog", 501)
	if err := f.enrollAttested(b, a); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(a.bin, []byte("#!agent patched\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	id := mustSVID(a.src).ID.String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fol := truststate.NewFollower(truststate.FollowerConfig{URL: f.url, Client: a.src.HTTPClient(), Bundle: a.src, TrustDomain: td})
	updates := make(chan *truststate.Document, 1024)
	go func() {
		_ = fol.Run(ctx, func(d *truststate.Document) {
			select {
			case updates <- d:
			case <-ctx.Done():
			}
		})
	}()
	<-updates
	wait := func(ok func(*truststate.Document) bool) {
		for {
			select {
			case d := <-updates:
				if ok(d) {
					return
				}
			case <-time.After(10 * time.Second):
				b.Fatal("follower did not see the change within 10s")
			}
		}
	}
	measure := func(b *testing.B, act func(i int), ok func(i int, d *truststate.Document) bool) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			act(i)
			wait(func(d *truststate.Document) bool { return ok(i, d) })
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
	b.Run("failed-attestation", func(b *testing.B) {
		var last string
		measure(b, func(int) {
			if err := a.src.Renew(ctx); err == nil {
				b.Fatal("tampered renewal accepted")
			}
		}, func(_ int, d *truststate.Document) bool {
			at := d.Attestations[id]
			if at.Reason != "tampered_binary" || at.ResultID == last || d.Status(id) != truststate.StatusQuarantined {
				return false
			}
			last = at.ResultID
			return true
		})
	})
	b.Run("baseline-admin-quarantine", func(b *testing.B) {
		var reason string
		measure(b, func(i int) {
			reason = "bench " + time.Now().String()
			if _, err := f.admin.ChangeTrust(ctx, "quarantine", api.TrustChange{ID: id, Reason: reason}); err != nil {
				b.Fatal(err)
			}
		}, func(_ int, d *truststate.Document) bool { return d.Agents[id].Reason == reason })
	})
}

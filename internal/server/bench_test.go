package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-a2a/warden/sdk"
)

// BenchmarkRenewals measures renewals per second of one control plane on the embedded
// store, driven by 64 agents renewing over their own kept-alive mTLS connections (as the
// SDK's Source does), the load generator on the same machine:
//
//	go test -run '^$' -bench Renewals -benchtime 2000x ./internal/server/
func BenchmarkRenewals(b *testing.B) {
	f := start(b, options{})
	const agents = 64
	srcs := make([]*sdk.Source, agents)
	for i := range srcs {
		_, srcs[i] = f.enroll(b, fmt.Sprintf("agent-%02d", i))
	}
	var next atomic.Int64
	ctx := context.Background()
	b.SetParallelism(agents / 2) // 64 goroutines on 2 CPUs
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		src := srcs[next.Add(1)-1]
		for pb.Next() {
			if err := src.Renew(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "renewals/s")
	// CPU time (user+system, server and load generator together) per renewal: on a
	// shared machine this is steadier than the wall-clock rate.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/renewal")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

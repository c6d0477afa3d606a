package gate_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/warden-a2a/warden/internal/gate"
)

// TestRotationUnderLoadDropsNothing: both the caller's SVID (outbound gate) and the
// inbound gate's SVID rotate every 50 ms while 8 workers send SendMessage without
// pause; every call succeeds.
func TestRotationUnderLoadDropsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("sustained load")
	}
	e := newEnv(t)
	ag := startAgent(t)
	in, inSrc := e.inbound(ag.url, nil)
	outSrc := &rotSVID{s: e.svid("/agent/procurement")}
	out := e.outbound("https://"+startGate(t, in, "tcp"), outSrc)
	sock := startGate(t, out, "unix")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := a2aClient(t, sock, a2a.TransportProtocolJSONRPC, "/")
			for ctx.Err() == nil {
				msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("po"))
				// purchase_order.read: create is rate limited to 10/s by the default bundle.
				msg.Metadata = map[string]any{"warden.action": "purchase_order.read", "warden.resource": "Order/PO-1"}
				if _, err := client.SendMessage(context.Background(), &a2a.SendMessageRequest{Message: msg}); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	rotations := 0
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-tick.C:
			outSrc.set(e.svid("/agent/procurement"))
			inSrc.set(e.svid("/gate/vendor-portal"))
			rotations++
		case <-ctx.Done():
		}
	}
	wg.Wait()
	t.Logf("%d calls, %d rotations of each SVID", ok.Load(), rotations)
	if failed.Load() != 0 {
		t.Fatalf("%d of %d calls failed during rotation; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() < 50 || rotations < 10 {
		t.Fatalf("too little load: %d calls, %d rotations", ok.Load(), rotations)
	}
}

// TestLimits: an oversized body, a connection that sends nothing (slowloris) and
// connections beyond the per-peer cap are cut.
func TestLimits(t *testing.T) {
	e := newEnv(t)
	g, _ := e.inbound(startAgent(t).url, func(c *gate.Config) {
		c.Limits = gate.Limits{MaxBody: 4096, ReadHeaderTimeout: 300 * time.Millisecond, MaxConnsPerPeer: 3}
	})
	addr := startGate(t, g, "tcp")
	c := e.caller(t, addr, e.svid("/agent/procurement"))

	t.Run("body over max_body", func(t *testing.T) {
		body := []byte(`{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"pad":"` + strings.Repeat("x", 8192) + `"}}`)
		req, _ := http.NewRequest(http.MethodPost, c.url+"/", bytes.NewReader(body))
		res, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d", res.StatusCode)
		}
	})
	t.Run("silent connection is closed", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		if err == nil || time.Since(start) > 3*time.Second {
			t.Errorf("silent connection held %v (err %v)", time.Since(start), err)
		}
	})
	t.Run("per-peer connection cap", func(t *testing.T) {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; i < 3; i++ {
			cn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, cn)
		}
		time.Sleep(50 * time.Millisecond)
		extra, err := net.Dial("tcp", addr)
		if err != nil {
			return // refused outright: fine
		}
		defer extra.Close()
		_ = extra.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err = extra.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("fourth connection from one address stayed open")
		}
	})
}

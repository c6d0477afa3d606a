package gate_test

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-a2a/warden/sdk"
)

// TestSSEUnbuffered: the first event of a stream reaches the caller while the agent is
// still holding the stream open — the gate does not buffer SSE, nor any other answer
// whose length is not known in advance.
func TestSSEUnbuffered(t *testing.T) {
	for _, ct := range []string{"text/event-stream", "application/x-ndjson"} {
		t.Run(ct, func(t *testing.T) { testUnbuffered(t, ct) })
	}
}

func testUnbuffered(t *testing.T, contentType string) {
	e := newEnv(t)
	release := make(chan struct{})
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":{\"first\":true}}\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = w.Write([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":{\"last\":true}}\n\n"))
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go up.Serve(ln)
	defer up.Close()
	g, _ := e.inbound("http://"+ln.Addr().String(), nil)
	c := e.caller(t, startGate(t, g, "tcp"), e.svid("/agent/procurement"))
	body := []byte(strings.Replace(string(rpcBody("purchase_order.read", "Order/PO-1")), `"SendMessage"`, `"SendStreamingMessage"`, 1))
	in := poIntent()
	in.Action = "purchase_order.read"
	req, _ := http.NewRequest(http.MethodPost, c.url+"/", bytes.NewReader(body))
	req.Header.Set(sdk.IntentHeader, c.sign(in, body))
	res, err := c.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(res.Body).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if !strings.Contains(line, `"first":true`) {
			t.Errorf("first line %q", line)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the first event did not arrive while the stream was open: buffered")
	}
	close(release)
}

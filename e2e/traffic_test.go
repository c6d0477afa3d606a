package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"

	"github.com/warden-a2a/warden/internal/demo"
)

// call is one A2A call an agent made through its outbound gate.
type call struct {
	agent, op  string
	start, end time.Time
	err        error
}

// traffic drives honest A2A traffic from agents through their outbound gates and keeps
// every call's outcome.
type traffic struct {
	mu     sync.Mutex
	calls  []call
	taskID a2a.TaskID // the newest task procurement created, for the readers
}

func (t *traffic) add(c call) {
	t.mu.Lock()
	t.calls = append(t.calls, c)
	t.mu.Unlock()
}

// snapshot returns the calls so far.
func (t *traffic) snapshot() []call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]call(nil), t.calls...)
}

// count returns how many calls of agent succeeded, and how many failed, among those
// that started at or after from and ended by to (zero to: no bound).
func (t *traffic) count(agent string, from, to time.Time) (ok, failed int) {
	for _, c := range t.snapshot() {
		if c.agent != agent || c.start.Before(from) || !to.IsZero() && c.end.After(to) {
			continue
		}
		if c.err == nil {
			ok++
		} else {
			failed++
		}
	}
	return ok, failed
}

// failures returns the failed calls of agent that ended by before (zero: all), as text.
func (t *traffic) failures(agent string, before time.Time) []string {
	var out []string
	for _, c := range t.snapshot() {
		if c.agent == agent && c.err != nil && (before.IsZero() || !c.end.After(before)) {
			out = append(out, fmt.Sprintf("%s %s at %s (+%s): %v", c.agent, c.op, c.start.Format("15:04:05.000"), c.end.Sub(c.start).Round(time.Millisecond), c.err))
		}
	}
	return out
}

// pace is the pause between two rounds of one agent's calls: it keeps the load a steady
// trickle on a shared 2-core machine and procurement's two purchase_order.create calls a
// round well under the default bundle's rate limit (10/s), so a rate_limited refusal is
// a wrongful one. It decides nothing.
const pace = 500 * time.Millisecond

// orders is procurement's agent: every round it sends a purchase order (SendMessage),
// confirms one as a streamed task (SendStreamingMessage) and reads the task back
// (GetTask), each through its outbound gate, until ctx ends.
func (t *traffic) orders(ctx context.Context, agent string, client *a2aclient.Client) {
	for n := 1; ctx.Err() == nil; n++ {
		po := fmt.Sprintf("PO-%d", n)
		t.do(ctx, agent, "SendMessage", func(ctx context.Context) error {
			msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("Purchase order "+po))
			msg.Metadata = map[string]any{"warden.action": "purchase_order.create", "warden.resource": "Order/" + po, "warden.workflow": "e2e-" + po, "warden.amount": 100, "warden.currency": "EUR"}
			res, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
			if err == nil {
				if _, ok := res.(*a2a.Message); !ok {
					err = fmt.Errorf("answer %T, want a message", res)
				}
			}
			return err
		})
		var task a2a.TaskID
		t.do(ctx, agent, "SendStreamingMessage", func(ctx context.Context) error {
			msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("Confirm "+po))
			msg.Metadata = map[string]any{"warden.action": "purchase_order.create", "warden.resource": "Order/" + po, "warden.workflow": "e2e-" + po, "warden.amount": 100, "warden.currency": "EUR", "as_task": true}
			var last a2a.TaskState
			for ev, err := range client.SendStreamingMessage(ctx, &a2a.SendMessageRequest{Message: msg}) {
				if err != nil {
					return err
				}
				switch v := ev.(type) {
				case *a2a.Task:
					task, last = v.ID, v.Status.State
				case *a2a.TaskStatusUpdateEvent:
					task, last = v.TaskID, v.Status.State
				}
			}
			if task == "" || last != a2a.TaskStateCompleted {
				return fmt.Errorf("stream ended with task %q in state %q", task, last)
			}
			return nil
		})
		if task != "" {
			t.read(ctx, agent, client, task)
			t.mu.Lock()
			t.taskID = task
			t.mu.Unlock()
		}
		sleep(ctx, pace)
	}
}

// reads is a reader agent (demand-planner): every round it reads the newest task through
// its own outbound gate (GetTask; the gate's default action purchase_order.read).
func (t *traffic) reads(ctx context.Context, agent string, client *a2aclient.Client) {
	for ctx.Err() == nil {
		t.mu.Lock()
		task := t.taskID
		t.mu.Unlock()
		if task != "" {
			t.read(ctx, agent, client, task)
		}
		sleep(ctx, pace)
	}
}

func (t *traffic) read(ctx context.Context, agent string, client *a2aclient.Client, id a2a.TaskID) {
	t.do(ctx, agent, "GetTask", func(ctx context.Context) error {
		got, err := client.GetTask(ctx, &a2a.GetTaskRequest{ID: id})
		if err == nil && got.Status.State != a2a.TaskStateCompleted {
			err = fmt.Errorf("task %s is %s", id, got.Status.State)
		}
		return err
	})
}

// do runs one call and records it; a call cut short because the test is ending is not
// recorded.
func (t *traffic) do(ctx context.Context, agent, op string, f func(context.Context) error) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := f(cctx)
	cancel()
	if ctx.Err() != nil && err != nil && errors.Is(err, context.Canceled) {
		return
	}
	t.add(call{agent: agent, op: op, start: start, end: time.Now(), err: err})
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// rotations records, per agent, every SVID serial its enroll --watch put on disk and
// when it was first seen.
type rotations struct {
	mu     sync.Mutex
	serial map[string][]seen
}

type seen struct {
	serial string
	at     time.Time
}

// watch polls the agents' SVID files until ctx ends.
func (r *rotations) watch(ctx context.Context, agents []*demo.Agent) {
	r.serial = map[string][]seen{}
	for ctx.Err() == nil {
		for _, a := range agents {
			s := a.Serial()
			r.mu.Lock()
			l := r.serial[a.Name]
			if s != "" && (len(l) == 0 || l[len(l)-1].serial != s) {
				r.serial[a.Name] = append(l, seen{s, time.Now()})
			}
			r.mu.Unlock()
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// since returns how many new SVIDs agent got after t.
func (r *rotations) since(agent string, t time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.serial[agent] {
		if s.at.After(t) {
			n++
		}
	}
	return n
}

func (r *rotations) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for name, l := range r.serial {
		fmt.Fprintf(&b, "%s: %d SVIDs", name, len(l))
		for _, s := range l {
			fmt.Fprintf(&b, " %.8s@%s", s.serial, s.at.Format("15:04:05"))
		}
		b.WriteString("\n")
	}
	return b.String()
}

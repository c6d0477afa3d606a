package workflow

import (
	"context"
	"sync"
)

// MemoryStore keeps workflow state in this process: for a single gate, or tests. State
// is lost on restart and not shared; use the control plane or Redis for replicas.
type MemoryStore struct {
	mu    sync.Mutex
	steps map[string]map[stepRec]bool // workflow\x00id -> recorded (action, callee, token)
	once  map[string]string           // workflow\x00action\x00callee\x00resource -> token
}

type stepRec struct{ action, callee, token string }

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{steps: map[string]map[stepRec]bool{}, once: map[string]string{}}
}

func runKey(s *Step) string { return s.Workflow + "\x00" + s.ID }
func onceKey(s *Step) string {
	return s.Workflow + "\x00" + s.Action + "\x00" + s.Callee + "\x00" + s.Resource
}

// Begin implements Store.
func (m *MemoryStore) Begin(_ context.Context, s Step) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	recs := m.steps[runKey(&s)]
	verdict := ""
	if !satisfied(s.After, func(a, c string) bool {
		for r := range recs {
			if r.action == a && r.callee == c {
				return true
			}
		}
		return false
	}, func(a string) bool {
		for r := range recs {
			if r.action == a {
				return true
			}
		}
		return false
	}) {
		verdict = OutOfOrder
	}
	_, dup := m.once[onceKey(&s)]
	if verdict == "" && !s.Repeatable && dup {
		verdict = Duplicate
	}
	if verdict != "" && s.Enforce {
		return verdict, nil
	}
	if recs == nil {
		recs = map[stepRec]bool{}
		m.steps[runKey(&s)] = recs
	}
	recs[stepRec{s.Action, s.Callee, s.Token}] = true
	if !s.Repeatable && !dup {
		m.once[onceKey(&s)] = s.Token
	}
	return verdict, nil
}

// Finish implements Store.
func (m *MemoryStore) Finish(_ context.Context, s Step, done bool) error {
	if done {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.steps[runKey(&s)], stepRec{s.Action, s.Callee, s.Token})
	if m.once[onceKey(&s)] == s.Token {
		delete(m.once, onceKey(&s))
	}
	return nil
}

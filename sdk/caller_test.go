package sdk_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/warden-a2a/warden/sdk"
)

// TestVerifiedCallerRefuses: every header set that the gate would never send.
func TestVerifiedCallerRefuses(t *testing.T) {
	const id = "spiffe://supplychain.example/agent/procurement"
	for _, tc := range []struct {
		name string
		h    http.Header
	}{
		{"absent", http.Header{}},
		{"twice", http.Header{sdk.HeaderPeerID: {id, id}}},
		{"not a SPIFFE ID", http.Header{sdk.HeaderPeerID: {"procurement"}}},
		{"underscore spelling alone", http.Header{"Warden_peer_id": {id}}},
		{"underscore spelling beside", http.Header{sdk.HeaderPeerID: {id}, "Warden_Peer_Id": {"spiffe://supplychain.example/agent/payment-release"}}},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header = tc.h
		if got, err := sdk.VerifiedCaller(r); !errors.Is(err, sdk.ErrNoVerifiedCaller) {
			t.Errorf("%s: %v %v", tc.name, got, err)
		}
	}
}

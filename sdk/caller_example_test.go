package sdk_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/warden-a2a/warden/sdk"
)

// An agent behind its gate asks who called: the SPIFFE ID the gate verified, or an
// error when the request did not come through the gate.
func ExampleVerifiedCaller() {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := sdk.VerifiedCaller(r)
		if err != nil {
			fmt.Println("refused:", err)
			http.Error(w, "not through the gate", http.StatusUnauthorized)
			return
		}
		fmt.Println("caller:", caller, "agent:", caller.Path())
	})

	through := httptest.NewRequest(http.MethodPost, "/", nil)
	through.Header.Set(sdk.HeaderPeerID, "spiffe://supplychain.example/agent/procurement")
	handler.ServeHTTP(httptest.NewRecorder(), through)

	direct := httptest.NewRequest(http.MethodPost, "/", nil)
	handler.ServeHTTP(httptest.NewRecorder(), direct)

	// Output:
	// caller: spiffe://supplychain.example/agent/procurement agent: /agent/procurement
	// refused: sdk: no verified caller: no Warden-Peer-Id header
}

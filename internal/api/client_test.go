package api_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warden-a2a/warden/internal/api"
)

// TestDoNamesTheCause: the mistakes an operator makes with a control-plane address come
// back with their cause named.
func TestDoNamesTheCause(t *testing.T) {
	ctx := context.Background()
	plain := httptest.NewServer(http.NotFoundHandler()) // something else on that port
	defer plain.Close()
	notWarden := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>404 page not found</html>", http.StatusNotFound)
	}))
	defer notWarden.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, tc := range []struct {
		name, url string
		want      string
	}{
		{"http:// instead of https://", plain.URL + "/v1/renew", "serves only https://"},
		{"https:// to a plain HTTP port", strings.Replace(plain.URL, "http://", "https://", 1) + "/v1/renew", "not the control plane's TLS port"},
		{"nothing listening", "https://" + closed + "/v1/renew", "nothing listens there"},
		{"a wrong server path or another server", notWarden.URL + "/warden/v1/renew", "no path"},
	} {
		err := api.Do(ctx, insecure, http.MethodPost, tc.url, map[string]string{}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", tc.name, err, tc.want)
		}
	}
	err := api.Do(ctx, insecure, http.MethodGet, notWarden.URL+"/x", nil, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.ReasonNotWarden || ae.Status != http.StatusNotFound {
		t.Errorf("non-Warden answer: %#v", err)
	}
}

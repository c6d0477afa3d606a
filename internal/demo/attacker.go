package demo

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-a2a/warden/internal/api"
)

// enrollWithCSRFor plays an attacker holding a valid join token who asks for someone
// else's identity: the CSR carries want as its URI SAN. It does not bother to
// authenticate the server.
func enrollWithCSRFor(ctx context.Context, serverURL, token string, want spiffeid.ID) error {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{want.URL()}}, key)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(api.EnrollRequest{Token: token, CSR: csr})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, serverURL+api.PathEnroll, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK {
		return nil
	}
	ae := &api.Error{Status: res.StatusCode}
	if err := json.Unmarshal(data, ae); err != nil {
		ae.Code, ae.Message = api.ReasonInternal, string(data)
	}
	return ae
}

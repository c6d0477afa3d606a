package workload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/warden-a2a/warden/internal/peercred"
)

// Selector says which local processes get the workload's identity. A caller matches
// when every non-empty field matches: its uid is one of UIDs, its gid one of GIDs, its
// executable one of Paths. At least one field must be set: a socket that answered
// anyone would hand the SVID's private key to every process that can reach it.
type Selector struct {
	UIDs  []uint32
	GIDs  []uint32
	Paths []string // absolute paths, compared with /proc/PID/exe
}

// Validate refuses an empty selector and relative paths.
func (s Selector) Validate() error {
	if len(s.UIDs)+len(s.GIDs)+len(s.Paths) == 0 {
		return errors.New("workload: a selector is required (uid, gid or executable path)")
	}
	for _, p := range s.Paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("workload: executable path %q is not absolute", p)
		}
	}
	return nil
}

func (s Selector) String() string {
	var parts []string
	for _, u := range s.UIDs {
		parts = append(parts, "uid:"+strconv.FormatUint(uint64(u), 10))
	}
	for _, g := range s.GIDs {
		parts = append(parts, "gid:"+strconv.FormatUint(uint64(g), 10))
	}
	for _, p := range s.Paths {
		parts = append(parts, "path:"+p)
	}
	return strings.Join(parts, ",")
}

// Caller is a Workload API client as the kernel identified it when it connected.
type Caller struct {
	peercred.Cred
	Exe    string // /proc/PID/exe at accept time; "" if it could not be read
	ExeErr error
}

func (c Caller) String() string {
	return fmt.Sprintf("uid=%d gid=%d pid=%d exe=%s", c.UID, c.GID, c.PID, c.Exe)
}

// Matches reports whether c may have the identity, and if not, why.
func (s Selector) Matches(c Caller) (bool, string) {
	switch {
	case len(s.UIDs) > 0 && !slices.Contains(s.UIDs, c.UID):
		return false, "uid " + strconv.FormatUint(uint64(c.UID), 10) + " is not selected"
	case len(s.GIDs) > 0 && !slices.Contains(s.GIDs, c.GID):
		return false, "gid " + strconv.FormatUint(uint64(c.GID), 10) + " is not selected"
	case len(s.Paths) > 0 && c.Exe == "":
		return false, "the caller's executable cannot be read"
	case len(s.Paths) > 0 && !slices.Contains(s.Paths, c.Exe):
		return false, "executable " + c.Exe + " is not selected"
	}
	return true, ""
}

// peerCreds are gRPC transport credentials that do no handshake on the wire (the
// Workload API is plaintext gRPC over a unix socket; SPIFFE Workload Endpoint §5: no
// client authentication) and attach the kernel's record of the caller to the
// connection, read when it is accepted.
type peerCreds struct{}

type callerInfo struct {
	credentials.CommonAuthInfo
	caller Caller
	err    error // the peer could not be identified: every call is refused
}

func (callerInfo) AuthType() string { return "peercred" }

func (peerCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info := callerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}
	cred, err := peercred.Of(c)
	if err != nil {
		info.err = err
		return c, info, nil
	}
	info.caller.Cred = cred
	info.caller.Exe, info.caller.ExeErr = peercred.Exe(cred.PID)
	return c, info, nil
}

func (peerCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("workload: server-side credentials only")
}
func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}
func (p peerCreds) Clone() credentials.TransportCredentials { return p }
func (peerCreds) OverrideServerName(string) error           { return nil }

// callerOf returns the caller of an RPC.
func callerOf(ctx context.Context) (Caller, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Caller{}, errors.New("no peer")
	}
	info, ok := p.AuthInfo.(callerInfo)
	if !ok {
		return Caller{}, errors.New("no peer credentials")
	}
	return info.caller, info.err
}

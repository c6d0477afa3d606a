package workload

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	pb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Config configures a Workload API server.
type Config struct {
	Source   Source
	Selector Selector // who gets the identity; required
	Logger   *slog.Logger
	Now      func() time.Time
}

// Server implements the SPIFFE Workload API (X.509-SVID and JWT-SVID profiles) for one
// workload identity.
type Server struct {
	pb.UnimplementedSpiffeWorkloadAPIServer
	cfg Config

	jwtMu    sync.Mutex
	jwtCache map[string]*jwtsvid.SVID // by the audience set
	jwtAt    map[string]time.Time     // when each cached token was fetched
}

// Bounds: the JWT-SVID cache (distinct audience sets), concurrent streams on one
// connection, and the size of a request (a JWT to validate is the largest).
const (
	maxJWTCache       = 64
	maxStreamsPerConn = 64
	maxRecvMsg        = 64 << 10
)

// New checks cfg and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("workload: Source is required")
	}
	if err := cfg.Selector.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, jwtCache: map[string]*jwtsvid.SVID{}, jwtAt: map[string]time.Time{}}, nil
}

// Listen opens the Workload API socket at addr, "unix:///path" or "unix:/path" (the form
// of SPIFFE_ENDPOINT_SOCKET), replacing a stale socket file. The socket is mode 0666:
// who gets the identity is decided by the selector, from the kernel's peer credentials,
// not by file permissions (SPIFFE Workload Endpoint §5) — so that a refused process
// learns PermissionDenied instead of a connection error.
func Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok {
		if path, ok = strings.CutPrefix(addr, "unix:"); !ok {
			return nil, fmt.Errorf("workload: address %q: want unix:///path", addr)
		}
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("workload: socket path %q is not absolute", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("workload: %w", err)
	}
	return ln, nil
}

// Serve serves the Workload API on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	gs := grpc.NewServer(grpc.Creds(peerCreds{}), grpc.MaxConcurrentStreams(maxStreamsPerConn),
		grpc.MaxRecvMsgSize(maxRecvMsg),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := s.admit(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := s.admit(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	pb.RegisterSpiffeWorkloadAPIServer(gs, s)
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	select {
	case <-ctx.Done():
		gs.Stop() // streams are endless: no graceful wait
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}

// admit checks the security header (SPIFFE Workload Endpoint §4: "workload.spiffe.io:
// true", else InvalidArgument) and the caller against the selector (PermissionDenied,
// §6: "does not have an identity defined for a given caller").
func (s *Server) admit(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	c, err := callerOf(ctx)
	if err != nil {
		s.cfg.Logger.Warn("workload api: caller refused", "method", method, "reason", "unidentified", "err", err)
		return status.Error(codes.PermissionDenied, "no identity issued: the caller could not be identified")
	}
	if ok, why := s.cfg.Selector.Matches(c); !ok {
		s.cfg.Logger.Warn("workload api: caller refused", "method", method, "caller", c.String(), "reason", why)
		return status.Error(codes.PermissionDenied, "no identity issued: "+why)
	}
	s.cfg.Logger.Debug("workload api: call", "method", method, "caller", c.String())
	return nil
}

// stream sends build(snapshot) now and again at every change that alters it, until the
// client goes away (SPIFFE Workload API §4.3: the first message at once, every message
// complete).
func stream[T proto.Message](s *Server, ctx context.Context, send func(T) error, build func(Snapshot) (T, error)) error {
	var last T
	sent := false
	for {
		changed := s.cfg.Source.Changed() // before the snapshot: no change is missed
		msg, err := build(s.cfg.Source.Snapshot())
		if err != nil {
			return status.Error(codes.Unavailable, err.Error())
		}
		if !sent || !proto.Equal(msg, last) {
			if err := send(msg); err != nil {
				return err
			}
			last, sent = msg, true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// FetchX509SVID streams the workload's X509-SVID with its bundle, and the federated
// bundles (Workload API §5.2.1).
func (s *Server) FetchX509SVID(_ *pb.X509SVIDRequest, ss grpc.ServerStreamingServer[pb.X509SVIDResponse]) error {
	return stream(s, ss.Context(), ss.Send, x509SVIDResponse)
}

// FetchX509Bundles streams the X.509 bundles of the own and the federated trust domains
// (§5.2.2).
func (s *Server) FetchX509Bundles(_ *pb.X509BundlesRequest, ss grpc.ServerStreamingServer[pb.X509BundlesResponse]) error {
	return stream(s, ss.Context(), ss.Send, func(snap Snapshot) (*pb.X509BundlesResponse, error) {
		if snap.SVID == nil {
			return nil, errors.New("no SVID yet")
		}
		return &pb.X509BundlesResponse{Bundles: x509Bundles(snap, spiffeid.TrustDomain{})}, nil
	})
}

// FetchJWTBundles streams the JWT bundles (JWK Sets) of the own and the federated trust
// domains (§6.2.2).
func (s *Server) FetchJWTBundles(_ *pb.JWTBundlesRequest, ss grpc.ServerStreamingServer[pb.JWTBundlesResponse]) error {
	return stream(s, ss.Context(), ss.Send, func(snap Snapshot) (*pb.JWTBundlesResponse, error) {
		out := map[string][]byte{}
		for td, b := range snap.JWTBundles {
			doc, err := b.Marshal()
			if err != nil {
				return nil, err
			}
			out[td.IDString()] = doc
		}
		return &pb.JWTBundlesResponse{Bundles: out}, nil
	})
}

// FetchJWTSVID returns a JWT-SVID for the audience, minted by the control plane
// (§6.2.1). A token is reused for the same audience set while more than half its
// lifetime is left.
func (s *Server) FetchJWTSVID(ctx context.Context, req *pb.JWTSVIDRequest) (*pb.JWTSVIDResponse, error) {
	if len(req.Audience) == 0 || slices.Contains(req.Audience, "") {
		return nil, status.Error(codes.InvalidArgument, "audience must be specified")
	}
	snap := s.cfg.Source.Snapshot()
	if snap.SVID == nil {
		return nil, status.Error(codes.Unavailable, "no SVID yet")
	}
	if req.SpiffeId != "" && req.SpiffeId != snap.SVID.ID.String() {
		return nil, status.Error(codes.PermissionDenied, "no identity "+req.SpiffeId+" for this caller")
	}
	sv, err := s.jwtSVID(ctx, req.Audience)
	if err != nil {
		s.cfg.Logger.Warn("workload api: JWT-SVID not obtained", "err", err)
		return nil, status.Error(codes.Unavailable, "JWT-SVID not obtained from the control plane: "+err.Error())
	}
	return &pb.JWTSVIDResponse{Svids: []*pb.JWTSVID{{SpiffeId: sv.ID.String(), Svid: sv.Marshal()}}}, nil
}

func (s *Server) jwtSVID(ctx context.Context, aud []string) (*jwtsvid.SVID, error) {
	sorted := slices.Clone(aud)
	slices.Sort(sorted)
	key := strings.Join(slices.Compact(sorted), "\x00")
	now := s.cfg.Now()
	s.jwtMu.Lock()
	if sv, ok := s.jwtCache[key]; ok {
		at := s.jwtAt[key]
		if now.Before(at.Add(sv.Expiry.Sub(at) / 2)) {
			s.jwtMu.Unlock()
			return sv, nil
		}
	}
	s.jwtMu.Unlock()
	sv, err := s.cfg.Source.FetchJWTSVID(ctx, aud)
	if err != nil {
		return nil, err
	}
	s.jwtMu.Lock()
	if len(s.jwtCache) >= maxJWTCache {
		clear(s.jwtCache)
		clear(s.jwtAt)
	}
	s.jwtCache[key], s.jwtAt[key] = sv, now
	s.jwtMu.Unlock()
	return sv, nil
}

// ValidateJWTSVID validates a JWT-SVID for an audience with the bundle of its subject's
// trust domain (§6.2.3); an invalid token is InvalidArgument.
func (s *Server) ValidateJWTSVID(_ context.Context, req *pb.ValidateJWTSVIDRequest) (*pb.ValidateJWTSVIDResponse, error) {
	if req.Audience == "" || req.Svid == "" {
		return nil, status.Error(codes.InvalidArgument, "audience and svid must be specified")
	}
	set := jwtbundle.NewSet()
	for _, b := range s.cfg.Source.Snapshot().JWTBundles {
		set.Add(b)
	}
	sv, err := jwtsvid.ParseAndValidate(req.Svid, set, []string{req.Audience})
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	claims, err := structpb.NewStruct(sv.Claims)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "claims: "+err.Error())
	}
	return &pb.ValidateJWTSVIDResponse{SpiffeId: sv.ID.String(), Claims: claims}, nil
}

func x509SVIDResponse(snap Snapshot) (*pb.X509SVIDResponse, error) {
	sv := snap.SVID
	if sv == nil {
		return nil, errors.New("no SVID yet")
	}
	key, err := x509.MarshalPKCS8PrivateKey(sv.PrivateKey)
	if err != nil {
		return nil, err
	}
	td := sv.ID.TrustDomain()
	home, ok := snap.X509Bundles[td]
	if !ok {
		return nil, errors.New("no bundle for " + td.Name())
	}
	return &pb.X509SVIDResponse{
		Svids: []*pb.X509SVID{{
			SpiffeId:    sv.ID.String(),
			X509Svid:    concatDER(sv.Certificates),
			X509SvidKey: key,
			Bundle:      concatDER(home.X509Authorities()),
		}},
		FederatedBundles: x509Bundles(snap, td),
	}, nil
}

// x509Bundles encodes every X.509 bundle but skip's, keyed by trust domain ID
// (spiffe://TD), each as concatenated DER certificates.
func x509Bundles(snap Snapshot, skip spiffeid.TrustDomain) map[string][]byte {
	out := map[string][]byte{}
	for td, b := range snap.X509Bundles {
		if td != skip {
			out[td.IDString()] = concatDER(b.X509Authorities())
		}
	}
	return out
}

func concatDER(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.Raw...)
	}
	return out
}

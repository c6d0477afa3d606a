// Package sdk is Warden's public Go package for agents: enrol with a one-time join token,
// keep a rotating X509-SVID that plugs into go-spiffe's tlsconfig unchanged, and sign
// intents for the calls an agent makes.
//
//	svid, bundle, err := sdk.Enroll(ctx, sdk.EnrollConfig{ServerURL: url, Token: token})
//	src, err := sdk.NewSource(sdk.SourceConfig{ServerURL: url, SVID: svid, Bundle: bundle, Dir: dir})
//	go src.Run(ctx) // renews at half-life with jitter, replaces the files atomically
//	tlsConf := tlsconfig.MTLSServerConfig(src, src, tlsconfig.AuthorizeMemberOf(td))
package sdk

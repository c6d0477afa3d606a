package policy

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	"gopkg.in/yaml.v3"
)

// Exception is a risk-accepted, time-bounded permit with an owner. It is compiled
// into a Cedar permit `@id("exception:<ID>")` whose condition is
// `context.time < <Expires as Unix seconds>`, so it stops applying at expiry
// without a reload. An exception may also waive named forbid policies for its
// scope while it is active; it never overrides a kill switch or a suspension.
//
// YAML form (one exception per file under exceptions/):
//
//	id: EXC-2026-041
//	owner: maria.keller@supplychain.example
//	reason: Logistics corrects the ACME warehouse address during the relocation.
//	risk_acceptance: RA-2026-017 accepted by the head of procurement
//	scope:
//	  principal: spiffe://supplychain.example/agent/logistics
//	  action: vendor_record.update
//	  resource: VendorRecord::"V-ACME"      # or a type: VendorRecord
//	waives: [shipping-cannot-modify-vendor-records]
//	expires: 2027-01-31T00:00:00Z
type Exception struct {
	ID             string    `yaml:"id"`
	Owner          string    `yaml:"owner"`
	Reason         string    `yaml:"reason"`
	RiskAcceptance string    `yaml:"risk_acceptance"`
	Scope          Scope     `yaml:"scope"`
	Waives         []string  `yaml:"waives"`
	Expires        time.Time `yaml:"expires"`
	File           string    `yaml:"-"`

	resType, resID string
}

// Scope says to which calls an exception applies: one principal (SPIFFE ID), one
// action, and a resource type or one resource (`Type::"id"`).
type Scope struct {
	Principal string `yaml:"principal"`
	Action    string `yaml:"action"`
	Resource  string `yaml:"resource"`
}

var (
	exceptionIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	typeNameRe    = regexp.MustCompile(`^[A-Z][A-Za-z0-9_]{0,63}$`)
	actionNameRe  = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	resourceRe    = regexp.MustCompile(`^([A-Z][A-Za-z0-9_]{0,63})(::"([^"\\]{1,256})")?$`)
)

// ErrInvalidException is wrapped by every error ParseException returns.
var ErrInvalidException = errors.New("invalid exception")

// ParseException parses and validates one exception document. It does not check the
// scope against a schema; Load does that by type-checking the compiled permit.
func ParseException(b []byte) (Exception, error) {
	var x Exception
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&x); err != nil {
		return Exception{}, fmt.Errorf("%w: %v", ErrInvalidException, err)
	}
	bad := func(format string, a ...any) (Exception, error) {
		return Exception{}, fmt.Errorf("%w: %s", ErrInvalidException, fmt.Sprintf(format, a...))
	}
	switch {
	case !exceptionIDRe.MatchString(x.ID):
		return bad("id %q must be 1-64 letters, digits, '.', '_' or '-'", x.ID)
	case strings.TrimSpace(x.Owner) == "":
		return bad("%s: owner is required", x.ID)
	case strings.TrimSpace(x.Reason) == "":
		return bad("%s: reason is required", x.ID)
	case strings.TrimSpace(x.RiskAcceptance) == "":
		return bad("%s: risk_acceptance is required", x.ID)
	case x.Expires.IsZero():
		return bad("%s: expires is required (RFC 3339 time)", x.ID)
	case !strings.HasPrefix(x.Scope.Principal, "spiffe://") || strings.ContainsAny(x.Scope.Principal, "\"\\\n ") || len(x.Scope.Principal) > 2048:
		return bad("%s: scope.principal must be one SPIFFE ID", x.ID)
	case !actionNameRe.MatchString(x.Scope.Action) || len(x.Scope.Action) > 128:
		return bad("%s: scope.action %q is not an action name", x.ID, x.Scope.Action)
	}
	m := resourceRe.FindStringSubmatch(x.Scope.Resource)
	if m == nil {
		return bad(`%s: scope.resource %q must be a type (VendorRecord) or one resource (VendorRecord::"V-1")`, x.ID, x.Scope.Resource)
	}
	x.resType, x.resID = m[1], m[3]
	for _, w := range x.Waives {
		if !exceptionIDRe.MatchString(w) {
			return bad("%s: waives %q is not a policy id", x.ID, w)
		}
	}
	for _, s := range []string{x.Owner, x.Reason, x.RiskAcceptance} {
		if len(s) > 4096 {
			return bad("%s: field longer than 4096 bytes", x.ID)
		}
	}
	return x, nil
}

// Active reports whether the exception applies at now (before its expiry).
func (x Exception) Active(now time.Time) bool { return now.Before(x.Expires) }

// DaysLeft is the number of whole days until expiry; negative once expired.
func (x Exception) DaysLeft(now time.Time) int {
	d := x.Expires.Sub(now)
	if d < 0 {
		return -int((-d).Hours()/24) - 1
	}
	return int(d.Hours() / 24)
}

// matches reports whether the exception's scope covers req (expiry not checked).
func (x *Exception) matches(req *Request) bool {
	return req.Agent.SPIFFEID == x.Scope.Principal && req.Action == x.Scope.Action &&
		req.Resource.Type == x.resType && (x.resID == "" || req.Resource.ID == x.resID)
}

// compile renders the exception as a Cedar permit and parses it.
func (x *Exception) compile() (*cedar.Policy, error) {
	res := "resource is " + x.resType
	if x.resID != "" {
		res = fmt.Sprintf("resource == %s::%s", x.resType, strconv.Quote(x.resID))
	}
	text := fmt.Sprintf("@id(%s)\n@reason(%s)\n@exception(%s)\n@owner(%s)\npermit (principal == Agent::%s, action == Action::%s, %s)\nwhen { context.time < %d };\n",
		strconv.Quote("exception:"+x.ID),
		strconv.Quote(fmt.Sprintf("exception %s (owner %s, expires %s): %s", x.ID, x.Owner, x.Expires.UTC().Format(time.RFC3339), x.Reason)),
		strconv.Quote(x.ID), strconv.Quote(x.Owner),
		strconv.Quote(x.Scope.Principal), strconv.Quote(x.Scope.Action), res, x.Expires.Unix())
	var p cedar.Policy
	if err := p.UnmarshalCedar([]byte(text)); err != nil {
		return nil, fmt.Errorf("exception %s does not compile: %v", x.ID, err)
	}
	return &p, nil
}

func (x Exception) canonical() string {
	return strconv.Quote(fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%s|%d", x.ID, x.Owner, x.Reason, x.RiskAcceptance,
		x.Scope.Principal, x.Scope.Action, x.Scope.Resource, strings.Join(x.Waives, ","), x.Expires.Unix()))
}

// errLine extracts a line number from a parser error message ("file:12:3: ..." or
// "line 12"); 0 when there is none.
func errLine(err error) int {
	s := err.Error()
	if m := lineColRe.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if m := lineWordRe.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

var (
	lineColRe  = regexp.MustCompile(`:(\d+):(\d+)`)
	lineWordRe = regexp.MustCompile(`line (\d+)`)
)

// lineOf returns the 1-based line of the first line whose trimmed text starts with
// prefix, or 1.
func lineOf(b []byte, prefix string) int {
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	return 1
}

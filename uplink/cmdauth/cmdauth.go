// Package cmdauth decides whether a downlink command may run: it takes the
// payload of <prefix>/v1/<gw>/cmd/<name> in either of its two forms and
// decodes it into the caller's request struct, or says why not.
//
//   - Signed: a compact JWS (RFC 7519 JWT, EdDSA over Ed25519, RFC 8037)
//     from the central service. The token's "kid" header picks one of the
//     configured public keys; "aud" must be this gateway, "cmd" the topic's
//     command name, "sub" the meter, "jti" the request id; "iat" and "exp"
//     are required and exp is at most MaxLifetime after iat; "nbf" and
//     "operator" are optional. Every other claim ("action", ...) decodes
//     into the request struct exactly as the unsigned form's keys do.
//   - Unsigned: the JSON object {"id":..,"command":..,"meter":..,...},
//     accepted only where the command's Policy says so.
//
// The package holds no state: whether a request id was used before is the
// caller's replay window (buffer.Remember), keyed on Envelope.ID until
// Envelope.NotAfter. Parsing and signature checks are golang-jwt's; nothing
// here touches base64 or signatures.
package cmdauth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors, each wrapped with the detail; classify with errors.Is.
var (
	// ErrMalformed: neither a JSON object nor a compact token, or a field
	// of the wrong type or twice.
	ErrMalformed = errors.New("malformed command")
	// ErrUnsigned: this command is only accepted signed.
	ErrUnsigned = errors.New("command must be signed")
	// ErrUnknownKey: the token's kid names no configured key.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrToken: signature, algorithm or a claim does not hold.
	ErrToken = errors.New("invalid command token")
)

// MaxLifetime is the longest exp - iat a token may have: a captured token
// is good for at most this long, and the replay window need not be longer.
const MaxLifetime = 15 * time.Minute

// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// UnsignedWindow is how long the id of an accepted unsigned command is kept
// in the replay window (it carries no exp of its own).
const UnsignedWindow = MaxLifetime

// Policy is what a command accepts.
type Policy struct {
	// Unsigned accepts the plain JSON form (signed is always accepted when
	// keys are configured).
	Unsigned bool
	// NoMeter: the command is about no meter (config, meters_upsert, ...):
	// its token need not carry sub.
	NoMeter bool
}

// Envelope is what the verifier established about a request, whatever its
// form: who asked what of which meter, and until when it may run.
type Envelope struct {
	ID       string // jti, or the unsigned form's id
	Command  string // cmd, or the unsigned form's command (the topic's name if absent)
	Meter    string // sub, or the unsigned form's meter
	Operator string // the person behind it, if the service says
	Signed   bool
	KeyID    string
	// NotAfter: a signed request must not reach the line after it (its exp);
	// also the end of its id's replay window. Zero for unsigned requests.
	NotAfter time.Time
}

// Verifier checks commands for one gateway. The zero Policy map means every
// command accepts the unsigned form except those listed.
type Verifier struct {
	Audience string                       // the gateway id
	Keys     map[string]ed25519.PublicKey // by kid
	Policies map[string]Policy            // by command name; missing = Default
	Default  Policy
	Leeway   time.Duration    // 0 = DefaultLeeway
	Now      func() time.Time // nil = time.Now
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) policy(cmd string) Policy {
	if p, ok := v.Policies[cmd]; ok {
		return p
	}
	return v.Default
}

// unsignedSecurityKeys look like claims but would be checked by nobody in
// the unsigned form; a sender who writes them expects them to count.
var unsignedSecurityKeys = []string{"exp", "expires", "nbf", "not_before", "iat", "jti", "sig", "signature", "aud", "sub", "cmd"}

// signedEnvelopeKeys are the unsigned form's names; in a token they would
// say a second time what sub, jti and cmd say.
var signedEnvelopeKeys = []string{"id", "command", "meter"}

// Decode checks payload, a command received on .../cmd/<command>, and
// decodes its fields into req (a pointer to the caller's request struct).
func (v *Verifier) Decode(command string, payload []byte, req any) (Envelope, error) {
	p := bytes.TrimSpace(payload)
	if len(p) > 0 && p[0] == '{' {
		return v.decodeUnsigned(command, p, req)
	}
	if len(p) == 0 || bytes.Count(p, []byte(".")) != 2 {
		return Envelope{}, fmt.Errorf("%w: neither a JSON object nor a signed token (header.claims.signature)", ErrMalformed)
	}
	return v.decodeSigned(command, string(p), req)
}

func (v *Verifier) decodeUnsigned(command string, p []byte, req any) (Envelope, error) {
	keys, err := topKeys(p)
	if err != nil {
		return Envelope{}, err
	}
	for _, k := range unsignedSecurityKeys {
		if keys[k] {
			return Envelope{}, fmt.Errorf("%w: %q in an unsigned command is checked by nobody; send a signed token", ErrMalformed, k)
		}
	}
	var env struct {
		ID       string `json:"id"`
		Command  string `json:"command"`
		Meter    string `json:"meter"`
		Operator string `json:"operator"`
	}
	if err := json.Unmarshal(p, &env); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	e := Envelope{ID: env.ID, Command: env.Command, Meter: env.Meter, Operator: env.Operator}
	if e.Command == "" {
		e.Command = command
	}
	if e.Command != command {
		return e, fmt.Errorf("%w: command %q sent on topic cmd/%s", ErrMalformed, e.Command, command)
	}
	if !v.policy(command).Unsigned {
		return e, fmt.Errorf("%w: %s accepts only a token signed by the central service (or set the gateway's unsigned policy for it)", ErrUnsigned, command)
	}
	if err := json.Unmarshal(p, req); err != nil {
		return e, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, nil
}

// claims are a token's claims: the registered ones the library checks, the
// envelope's private ones, and the raw object for the request struct.
type claims struct {
	jwt.RegisteredClaims
	Cmd      string `json:"cmd"`
	Operator string `json:"operator"`
	raw      []byte
	bad      error // our own reason the claims did not decode
}

func (c *claims) UnmarshalJSON(b []byte) error {
	keys, err := topKeys(b)
	if err != nil {
		c.bad = err
		return err
	}
	for _, k := range signedEnvelopeKeys {
		if keys[k] {
			c.bad = fmt.Errorf("%w: claim %q in a token (use sub, jti, cmd)", ErrMalformed, k)
			return c.bad
		}
	}
	var plain struct {
		jwt.RegisteredClaims
		Cmd      string `json:"cmd"`
		Operator string `json:"operator"`
	}
	if err := json.Unmarshal(b, &plain); err != nil {
		return err
	}
	c.RegisteredClaims, c.Cmd, c.Operator = plain.RegisteredClaims, plain.Cmd, plain.Operator
	c.raw = append([]byte(nil), b...)
	return nil
}

func (v *Verifier) decodeSigned(command, tok string, req any) (Envelope, error) {
	if len(v.Keys) == 0 {
		return Envelope{}, fmt.Errorf("%w: this gateway has no command keys (mqtt.command_keys)", ErrUnknownKey)
	}
	leeway := v.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	var c claims
	var kid string
	var keyErr error
	_, err := jwt.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		k, ok := v.Keys[kid]
		if !ok {
			keyErr = fmt.Errorf("%w: kid %q (configured: %s)", ErrUnknownKey, kid, strings.Join(v.kids(), ", "))
			return nil, keyErr
		}
		return k, nil
	},
		jwt.WithValidMethods([]string{"EdDSA"}), // never the token's own choice of algorithm
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(v.now),
	)
	e := Envelope{ID: c.ID, Command: c.Cmd, Meter: c.Subject, Operator: c.Operator, Signed: true, KeyID: kid}
	switch {
	case err != nil && keyErr != nil:
		return e, keyErr
	case err != nil && c.bad != nil:
		return e, c.bad
	case err != nil:
		return e, fmt.Errorf("%w: %v", ErrToken, err)
	}
	e.NotAfter = c.ExpiresAt.Time.UTC()
	switch {
	case c.IssuedAt == nil:
		return e, fmt.Errorf("%w: iat is required", ErrToken)
	case c.ExpiresAt.Time.Sub(c.IssuedAt.Time) > MaxLifetime:
		return e, fmt.Errorf("%w: exp is %s after iat (at most %s)", ErrToken, c.ExpiresAt.Time.Sub(c.IssuedAt.Time), MaxLifetime)
	case c.ID == "":
		return e, fmt.Errorf("%w: jti (the request id) is required", ErrToken)
	case c.Subject == "" && !v.policy(command).NoMeter:
		return e, fmt.Errorf("%w: sub (the meter) is required", ErrToken)
	case c.Cmd != command:
		return e, fmt.Errorf("%w: cmd %q sent on topic cmd/%s", ErrToken, c.Cmd, command)
	}
	if err := json.Unmarshal(c.raw, req); err != nil {
		return e, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, nil
}

func (v *Verifier) kids() []string {
	out := make([]string, 0, len(v.Keys))
	for k := range v.Keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// topKeys returns the keys of a JSON object, refusing one that names a key
// twice ({"action":"close","action":"open"} would otherwise be "open").
func topKeys(p []byte) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	keys := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		k, _ := t.(string)
		if keys[k] {
			return nil, fmt.Errorf("%w: key %q given twice", ErrMalformed, k)
		}
		keys[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	return keys, nil
}

// LoadKeys reads PEM "PUBLIC KEY" Ed25519 keys, kid → file.
func LoadKeys(files map[string]string) (map[string]ed25519.PublicKey, error) {
	out := make(map[string]ed25519.PublicKey, len(files))
	for kid, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("command key %s: %w", kid, err)
		}
		k, err := ParseKey(b)
		if err != nil {
			return nil, fmt.Errorf("command key %s (%s): %w", kid, f, err)
		}
		out[kid] = k
	}
	return out, nil
}

// ParseKey parses one PEM "PUBLIC KEY" holding an Ed25519 key.
func ParseKey(pemBytes []byte) (ed25519.PublicKey, error) {
	k, err := jwt.ParseEdPublicKeyFromPEM(pemBytes)
	if err != nil {
		return nil, err
	}
	pk, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("not an Ed25519 public key")
	}
	return pk, nil
}

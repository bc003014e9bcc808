package cmdauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type request struct {
	ID       string `json:"id"`
	Command  string `json:"command"`
	Meter    string `json:"meter"`
	Action   string `json:"action"`
	Interval string `json:"interval"`
}

var t0 = time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)

func keypair(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func sign(t *testing.T, priv ed25519.PrivateKey, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func valveClaims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"aud": "gw-1", "sub": "flat-04", "cmd": "valve", "action": "close", "jti": "r1",
		"iat": t0.Unix(), "exp": t0.Add(5 * time.Minute).Unix(), "operator": "ops@utility"}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestDecode(t *testing.T) {
	pub, priv := keypair(t)
	pub2, priv2 := keypair(t)
	_, other := keypair(t)
	v := &Verifier{Audience: "gw-1", Keys: map[string]ed25519.PublicKey{"k1": pub, "k2": pub2},
		Policies: map[string]Policy{"valve": {}}, Default: Policy{Unsigned: true}, Now: func() time.Time { return t0.Add(time.Minute) }}

	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, valveClaims(nil))
	hs.Header["kid"] = "k1"
	hsTok, _ := hs.SignedString([]byte(pub)) // the classic: the public key as an HMAC secret
	none := jwt.NewWithClaims(jwt.SigningMethodNone, valveClaims(nil))
	none.Header["kid"] = "k1"
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	good := sign(t, priv, "k1", valveClaims(nil))
	parts := strings.Split(good, ".")

	cases := []struct {
		name    string
		cmd     string
		payload string
		want    error
		env     Envelope
		req     request
	}{
		{"signed", "valve", good, nil, Envelope{ID: "r1", Command: "valve", Meter: "flat-04", Operator: "ops@utility", Signed: true, KeyID: "k1", NotAfter: t0.Add(5 * time.Minute)}, request{Action: "close"}},
		{"second key during rotation", "valve", sign(t, priv2, "k2", valveClaims(nil)), nil, Envelope{ID: "r1", Command: "valve", Meter: "flat-04", Operator: "ops@utility", Signed: true, KeyID: "k2", NotAfter: t0.Add(5 * time.Minute)}, request{Action: "close"}},
		{"unsigned valve", "valve", `{"id":"r1","command":"valve","meter":"flat-04","action":"close"}`, ErrUnsigned, Envelope{}, request{}},
		{"unsigned read", "read", `{"id":"r2","meter":"flat-04"}`, nil, Envelope{ID: "r2", Command: "read", Meter: "flat-04"}, request{ID: "r2", Meter: "flat-04"}},
		{"unsigned with expiry", "read", `{"id":"r2","meter":"m","expires":"2001-01-01T00:00:00Z"}`, ErrMalformed, Envelope{}, request{}},
		{"unsigned with sig", "read", `{"id":"r2","meter":"m","sig":"AAAA"}`, ErrMalformed, Envelope{}, request{}},
		{"duplicate key", "read", `{"id":"r2","meter":"m","action":"close","action":"open"}`, ErrMalformed, Envelope{}, request{}},
		{"unsigned on another topic", "read", `{"id":"r2","command":"ping"}`, ErrMalformed, Envelope{}, request{}},
		{"expired", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) {
			c["iat"] = t0.Add(-20 * time.Minute).Unix()
			c["exp"] = t0.Add(-10 * time.Minute).Unix()
		})), ErrToken, Envelope{}, request{}},
		{"no exp", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { delete(c, "exp") })), ErrToken, Envelope{}, request{}},
		{"no iat", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { delete(c, "iat") })), ErrToken, Envelope{}, request{}},
		{"too long", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { c["exp"] = t0.Add(16 * time.Minute).Unix() })), ErrToken, Envelope{}, request{}},
		{"not yet valid", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { c["nbf"] = t0.Add(10 * time.Minute).Unix() })), ErrToken, Envelope{}, request{}},
		{"issued in the future", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) {
			c["iat"] = t0.Add(10 * time.Minute).Unix()
			c["exp"] = t0.Add(12 * time.Minute).Unix()
		})), ErrToken, Envelope{}, request{}},
		{"wrong aud", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { c["aud"] = "gw-2" })), ErrToken, Envelope{}, request{}},
		{"no sub", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { delete(c, "sub") })), ErrToken, Envelope{}, request{}},
		{"no jti", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { delete(c, "jti") })), ErrToken, Envelope{}, request{}},
		{"cmd of another topic", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { c["cmd"] = "read" })), ErrToken, Envelope{}, request{}},
		{"meter beside sub", "valve", sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { c["meter"] = "flat-05" })), ErrMalformed, Envelope{}, request{}},
		{"unknown kid", "valve", sign(t, priv, "k9", valveClaims(nil)), ErrUnknownKey, Envelope{}, request{}},
		{"no kid", "valve", sign(t, priv, "", valveClaims(nil)), ErrUnknownKey, Envelope{}, request{}},
		{"signed by another key", "valve", sign(t, other, "k1", valveClaims(nil)), ErrToken, Envelope{}, request{}},
		{"bad signature", "valve", parts[0] + "." + parts[1] + ".AAAA", ErrToken, Envelope{}, request{}},
		{"claims swapped under a good signature", "valve", parts[0] + "." + strings.Split(sign(t, priv, "k1", valveClaims(func(c jwt.MapClaims) { c["action"] = "open" })), ".")[1] + "." + parts[2], ErrToken, Envelope{}, request{}},
		{"HS256 with the public key", "valve", hsTok, ErrToken, Envelope{}, request{}},
		{"alg none", "valve", noneTok, ErrToken, Envelope{}, request{}},
		{"garbage", "valve", "close the valve", ErrMalformed, Envelope{}, request{}},
		{"empty", "valve", "", ErrMalformed, Envelope{}, request{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req request
			env, err := v.Decode(tc.cmd, []byte(tc.payload), &req)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env != tc.env || req != tc.req {
				t.Fatalf("got %+v %+v\nwant %+v %+v", env, req, tc.env, tc.req)
			}
		})
	}
}

// Without a policy entry and with the zero Default, nothing unsigned runs.
func TestZeroPolicyRefusesUnsigned(t *testing.T) {
	var v Verifier
	var req request
	if _, err := v.Decode("read", []byte(`{"id":"a","meter":"m"}`), &req); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("%v", err)
	}
	if _, err := v.Decode("read", []byte("a.b.c"), &req); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("no keys: %v", err)
	}
}

func TestLoadKeys(t *testing.T) {
	pub, _ := keypair(t)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "k1.pem")
	os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a key"), 0o644)
	keys, err := LoadKeys(map[string]string{"k1": f})
	if err != nil || !keys["k1"].Equal(pub) {
		t.Fatalf("%v %v", keys, err)
	}
	if _, err := LoadKeys(map[string]string{"k2": bad}); err == nil || !strings.Contains(err.Error(), "k2") {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := LoadKeys(map[string]string{"k3": filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing file accepted")
	}
}

func FuzzDecode(f *testing.F) {
	pub, priv := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey), ed25519.NewKeyFromSeed(make([]byte, 32))
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, valveClaims(nil))
	tok.Header["kid"] = "k1"
	s, _ := tok.SignedString(priv)
	f.Add([]byte(s))
	f.Add([]byte(`{"id":"r1","command":"valve","meter":"m","action":"open"}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	v := &Verifier{Audience: "gw-1", Keys: map[string]ed25519.PublicKey{"k1": pub}, Default: Policy{Unsigned: true}, Now: func() time.Time { return t0 }}
	f.Fuzz(func(t *testing.T, p []byte) {
		var req request
		env, err := v.Decode("valve", p, &req)
		if err == nil && env.Signed && (env.ID == "" || env.Meter == "" || env.NotAfter.IsZero()) {
			t.Fatalf("accepted an incomplete token: %+v", env)
		}
	})
}

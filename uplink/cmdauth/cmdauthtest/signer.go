// Package cmdauthtest signs commands as the utility's central service does,
// for the tests of the gateway's side: the uplink's and the daemon's end to
// end. Production code never imports it.
package cmdauthtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer holds one Ed25519 signing key of the service.
type Signer struct {
	Kid  string // the key id the gateway's config names it by
	File string // the public key as PEM, for the config's command_keys
	Aud  string // the gateway commands are for
	TTL  time.Duration
	priv ed25519.PrivateKey
}

// New makes a key named kid for commands to gateway aud, valid for 5
// minutes, and writes its public key into dir.
func New(t testing.TB, dir, kid, aud string) Signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(kid)+"-*.pem")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pem.Encode(f, &pem.Block{Type: "PUBLIC KEY", Bytes: der}); err != nil {
		t.Fatal(err)
	}
	return Signer{Kid: kid, File: f.Name(), Aud: aud, TTL: 5 * time.Minute, priv: priv}
}

// Valve signs a valve command (action "open" or "close") for meter, with
// request id jti, from operator ops-7; mod changes the claims before signing.
func (s Signer) Valve(t testing.TB, jti, meter, action string, mod func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"aud": s.Aud, "sub": meter, "cmd": "valve", "action": action, "jti": jti,
		"iat": now.Unix(), "exp": now.Add(s.TTL).Unix(), "operator": "ops-7"}
	if mod != nil {
		mod(c)
	}
	return s.Sign(t, c)
}

// Sign signs claims as they are, with the key's id in the header.
func (s Signer) Sign(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = s.Kid
	out, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

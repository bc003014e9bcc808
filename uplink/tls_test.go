package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type pki struct {
	dir                          string
	ca, serverCert, serverKey    string
	clientCert, clientKey, other string // other: an unrelated CA
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func issue(t testing.TB, dir, name string, parent *issuer, tmpl *x509.Certificate) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = sn
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	kder, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, filepath.Join(dir, name+".key"), "EC PRIVATE KEY", kder)
	return &issuer{cert: cert, key: key}
}

// newPKI makes a CA, a server certificate for 127.0.0.1/localhost, a client
// certificate, and a second CA that signed neither.
func newPKI(t testing.TB) pki {
	dir := t.TempDir()
	caT := &x509.Certificate{Subject: pkix.Name{CommonName: "tidegate test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	ca := issue(t, dir, "ca", nil, caT)
	issue(t, dir, "other", nil, &x509.Certificate{Subject: pkix.Name{CommonName: "unrelated CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign})
	issue(t, dir, "server", ca, &x509.Certificate{Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	issue(t, dir, "client", ca, &x509.Certificate{Subject: pkix.Name{CommonName: "gw1"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	p := func(n string) string { return filepath.Join(dir, n) }
	return pki{dir: dir, ca: p("ca.pem"), serverCert: p("server.pem"), serverKey: p("server.key"),
		clientCert: p("client.pem"), clientKey: p("client.key"), other: p("other.pem")}
}

func startTLSMosquitto(t *testing.T, k pki) (tlsURL string, m *mosquitto) {
	tlsPort := freePort(t)
	m = startMosquitto(t, fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
		tlsPort, k.ca, k.serverCert, k.serverKey))
	return fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort), m
}

func TestTLSClientCertificateMosquitto(t *testing.T) {
	needMosquitto(t)
	k := newPKI(t)
	tlsURL, m := startTLSMosquitto(t, k)
	q := openBuffer(t)
	last := fill(t, q, 500, 3)
	sub := subscribe(t, m.url("tcp"), "test") // the plain listener, for the test's eyes only
	cfg := testConfig(tlsURL)
	cfg.TLS = TLSConfig{CAFile: k.ca, CertFile: k.clientCert, KeyFile: k.clientKey, ServerName: "localhost"}
	log, _ := quietLog(t)
	u, err := New(cfg, q, log)
	if err != nil {
		t.Fatal(err)
	}
	startUplink(t, u)
	waitFor(t, 20*time.Second, "drained over TLS", func() bool { return q.Cursor() == last })
	waitFor(t, 5*time.Second, "all at the subscriber", func() bool { got, _ := sub.unique(); return uint64(len(got)) == last })
	got, _ := sub.unique()
	checkAll(t, got, last)
}

func TestTLSFailures(t *testing.T) {
	needMosquitto(t)
	k := newPKI(t)
	tlsURL, _ := startTLSMosquitto(t, k)
	for _, tc := range []struct {
		name      string
		tls       TLSConfig
		wantInErr string // "a|b": either
	}{
		{"wrong CA", TLSConfig{CAFile: k.other, CertFile: k.clientCert, KeyFile: k.clientKey}, "certificate signed by unknown authority"},
		{"wrong server name", TLSConfig{CAFile: k.ca, CertFile: k.clientCert, KeyFile: k.clientKey, ServerName: "broker.example"}, "broker.example"},
		{"no client certificate", TLSConfig{CAFile: k.ca}, "certificate required|connection reset"}, // TLS 1.3: the refusal can race the first write,
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := openBuffer(t)
			fill(t, q, 10, 1)
			cfg := testConfig(tlsURL)
			cfg.TLS = tc.tls
			log, logs := quietLog(t)
			u, err := New(cfg, q, log)
			if err != nil {
				t.Fatal(err)
			}
			startUplink(t, u)
			waitFor(t, 10*time.Second, "a connect error", func() bool { return u.Stats().LastError != "" })
			time.Sleep(200 * time.Millisecond)
			s := u.Stats()
			if s.Connected || q.Cursor() != 0 {
				t.Fatalf("connected or delivered despite a bad TLS setup: %+v", s)
			}
			if !containsAny(s.LastError, strings.Split(tc.wantInErr, "|")) {
				t.Fatalf("LastError %q does not say %q", s.LastError, tc.wantInErr)
			}
			if !strings.Contains(logs.String(), "uplink connect failed") {
				t.Fatalf("the failure was not logged: %s", logs.String())
			}
			t.Logf("error: %s", s.LastError)
		})
	}
}

func TestTLSFilesAtNew(t *testing.T) {
	k := newPKI(t)
	q := openBuffer(t)
	for _, tc := range []struct {
		name string
		tls  TLSConfig
	}{
		{"missing CA file", TLSConfig{CAFile: filepath.Join(k.dir, "nope.pem")}},
		{"CA file not PEM", TLSConfig{CAFile: k.clientKey + "x"}},
		{"key is not the certificate's", TLSConfig{CAFile: k.ca, CertFile: k.clientCert, KeyFile: k.serverKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("ssl://127.0.0.1:8883")
			cfg.TLS = tc.tls
			if tc.name == "CA file not PEM" {
				os.WriteFile(tc.tls.CAFile, []byte("not a certificate"), 0o600)
			}
			_, err := New(cfg, q, nil)
			if !errors.Is(err, ErrTLS) {
				t.Fatalf("New: %v, want ErrTLS", err)
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

package uplink

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

type testProblems struct{ list []string }

func (p testProblems) Error() string         { return "the config has problems" }
func (p testProblems) ProblemList() []string { return p.list }

// Configure makes the test fleet a ConfigHandler: it echoes what arrived,
// and refuses a config holding "bad" with one problem.
func (m *meters) Configure(_ context.Context, req ConfigRequest) (any, error) {
	if strings.Contains(req.Config, "bad") {
		return nil, testProblems{[]string{"tidegate.yaml:3:7: meters[0].bus: no bus named \"x\""}}
	}
	var meters []json.RawMessage
	_ = json.Unmarshal(req.Meters, &meters)
	return map[string]any{"command": req.Command, "base_hash": req.BaseHash, "config_len": len(req.Config), "meters": len(meters), "signed": req.Signed}, nil
}

// The remote configuration commands pass through the uplink's dispatch to
// the handler; a whole config is larger than other commands may be, and a
// refused one carries its problems in the result.
func TestConfigCommands(t *testing.T) {
	_, send := startCommands(t, true)
	big := strings.Repeat("# a comment line of a real config file\n", 300) // 12 kB
	for _, tc := range []struct {
		name, topic, payload, resultID string
		ok                             bool
		want                           string
	}{
		{"config", "config", `{"id":"c1","command":"config","base_hash":"00ff","config":` + jsonString(big) + `}`, "c1", true, `"config_len":11700`},
		{"config problems", "config", `{"id":"c2","base_hash":"00ff","config":"bad"}`, "c2", false, `"problems":["tidegate.yaml:3:7: meters[0].bus: no bus named \"x\""]`},
		{"meters_upsert", "meters_upsert", `{"id":"u1","meters":[{"id":"m1","bus":"b","address":3}]}`, "u1", true, `"meters":1`},
		{"meters_remove", "meters_remove", `{"id":"u2","meters":["m1","m2"]}`, "u2", true, `"meters":2`},
		{"config_get", "config_get", `{"id":"g1"}`, "g1", true, `"command":"config_get"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, got := send(tc.topic, tc.payload, tc.resultID)
			if !got {
				t.Fatalf("no result on cmd/%s/result", tc.resultID)
			}
			b, _ := json.Marshal(res)
			if res["ok"] != tc.ok || !strings.Contains(string(b), tc.want) {
				t.Fatalf("result %s, want ok=%v with %s", b, tc.ok, tc.want)
			}
		})
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

// The signed form of config (claims aud, jti, iat, exp, cmd, base_hash,
// config; no sub) reaches the handler marked signed; the unsigned form is
// refused where the gateway does not allow it, and a replayed token too.
func TestSignedConfigCommand(t *testing.T) {
	br := startMochi(t)
	k := newSigner(t, "k1")
	r := startSignedCommands(t, br.URL(), k)
	tok := k.Valve(t, "sc1", "", "", func(c jwt.MapClaims) {
		delete(c, "sub")
		delete(c, "action")
		c["cmd"], c["base_hash"], c["config"] = "config", "00ff", "gateway: {id: gw1}\n"
	})
	r.send("config", tok, false)
	res := r.result("sc1", 1)
	b, _ := json.Marshal(res)
	if !res.OK || !strings.Contains(string(b), `"signed":true`) || !strings.Contains(string(b), `"base_hash":"00ff"`) || !strings.Contains(string(b), `"config_len":19`) {
		t.Fatalf("signed config: %s", b)
	}
	r.send("config", tok, false)
	if res := r.result("sc1", 2); res.OK || !strings.Contains(res.Error, "replay") {
		t.Fatalf("replayed signed config: %+v", res)
	}
	r.send("config", `{"id":"uc1","base_hash":"00ff","config":"gateway: {id: gw1}"}`, false)
	if res := r.result("uc1", 1); res.OK || !strings.Contains(res.Error, "signed") {
		t.Fatalf("unsigned config where not allowed: %+v", res)
	}
	r.send("config_get", `{"id":"ug1"}`, false)
	if res := r.result("ug1", 1); !res.OK {
		t.Fatalf("unsigned config_get: %+v", res)
	}
}

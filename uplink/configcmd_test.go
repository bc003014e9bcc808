package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
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
	if req.Signed {
		return nil, errors.New("the unsigned form came as signed")
	}
	var meters []json.RawMessage
	_ = json.Unmarshal(req.Meters, &meters)
	return map[string]any{"command": req.Command, "base_hash": req.BaseHash, "config_len": len(req.Config), "meters": len(meters)}, nil
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
		{"config too big", "config", `{"id":"c3","config":` + jsonString(strings.Repeat("x", 65600)) + `}`, "_", false, "max 65536"},
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

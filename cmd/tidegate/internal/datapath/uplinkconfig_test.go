package datapath

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tidegate/cmd/tidegate/internal/config"
	"tidegate/reading"
	"tidegate/uplink"
)

// Every uplink setting is settable in tidegate.yaml and reaches the uplink:
// each yaml key of uplink.Config is a key of the mqtt section (but for the
// few the daemon fills itself), and a value set there arrives. (Before:
// reconnect_jitter, ack_timeout, max_inflight, keepalive and
// historical_after were unknown keys.)
func TestEveryUplinkSettingInTheConfig(t *testing.T) {
	own := map[string]bool{"gateway": true, "password_env": true, "qos": true} // gateway.id, TIDEGATE_MQTT_PASSWORD, fixed at 1
	mqtt := map[string]reflect.StructField{}
	mt := reflect.TypeOf(config.MQTT{})
	for i := 0; i < mt.NumField(); i++ {
		mqtt[strings.Split(mt.Field(i).Tag.Get("yaml"), ",")[0]] = mt.Field(i)
	}
	var c config.Config
	c.Gateway.ID = "g"
	mv := reflect.ValueOf(&c.MQTT).Elem()
	ut := reflect.TypeOf(uplink.Config{})
	want := map[string]any{}
	for i := 0; i < ut.NumField(); i++ {
		key := strings.Split(ut.Field(i).Tag.Get("yaml"), ",")[0]
		if key == "-" || key == "" || own[key] {
			continue
		}
		f, ok := mqtt[key]
		if !ok {
			t.Errorf("uplink setting %q cannot be set in tidegate.yaml's mqtt section", key)
			continue
		}
		switch f.Type.Kind() {
		case reflect.Int64:
			if f.Type == reflect.TypeOf(time.Duration(0)) {
				mv.FieldByName(f.Name).SetInt(int64(time.Duration(i+1) * time.Second))
				want[ut.Field(i).Name] = time.Duration(i+1) * time.Second
			}
		case reflect.Int:
			mv.FieldByName(f.Name).SetInt(int64(i + 1))
			want[ut.Field(i).Name] = i + 1
		}
	}
	uc := reflect.ValueOf(UplinkConfig(&c, "v"))
	for name, v := range want {
		if got := uc.FieldByName(name).Interface(); got != v {
			t.Errorf("mqtt setting for uplink.Config.%s: set %v, the uplink got %v", name, v, got)
		}
	}
	if len(want) < 10 {
		t.Errorf("only %d settings checked", len(want))
	}
}

// Whatever `config validate` accepts, `run` starts with: every golden
// config case that validates builds an uplink (its files aside: a CA named
// in the file is a deployment matter). (Before: wss:// and tls.enabled with
// a tcp:// remote broker validated, and run exited 1 every time systemd
// started it.)
func TestValidGoldenConfigsStartTheUplink(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/config/*")
	n := 0
	for _, dir := range dirs {
		if b, err := os.ReadFile(filepath.Join(dir, "expected.err")); err != nil || len(b) > 0 {
			continue
		}
		n++
		cfg, err := config.Load(filepath.Join(dir, "config.yaml"), func(string) string { return "" })
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		uc := UplinkConfig(cfg, "test")
		uc.TLS.CAFile, uc.TLS.CertFile, uc.TLS.KeyFile = "", "", ""
		if _, err := uplink.New(uc, nopQueue{}, nil); err != nil {
			t.Errorf("%s validates, but the uplink refuses it: %v", filepath.Base(dir), err)
		}
	}
	if n < 3 {
		t.Fatalf("only %d valid golden cases found", n)
	}
}

type nopQueue struct{}

func (nopQueue) Read(uint64, int) ([]reading.Record, error)       { return nil, nil }
func (nopQueue) ReadUrgent(uint64, int) ([]reading.Record, error) { return nil, nil }
func (nopQueue) Ack(...uint64) error                              { return nil }
func (nopQueue) AckUpTo(uint64) error                             { return nil }
func (nopQueue) Notify() <-chan struct{}                          { return nil }
func (nopQueue) EnsureAbove(uint64) error                         { return nil }
func (nopQueue) LastSeq() uint64                                  { return 0 }
func (nopQueue) SeqBase() uint64                                  { return 0 }

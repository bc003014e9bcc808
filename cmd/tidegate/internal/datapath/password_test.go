package datapath

import (
	"io"

	"github.com/sirupsen/logrus"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tidegate/buffer"
	"tidegate/cmd/tidegate/internal/config"
	"tidegate/uplink"
)

// mqtt.password in the file and mqtt.reconnect_max reach the uplink; the
// daemon does not go looking for TIDEGATE_MQTT_PASSWORD. (Before: the
// password in the file made the daemon require the variable and fail in a
// restart loop; reconnect_max was an unknown key.)
func TestUplinkConfigFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	y := `gateway: {id: gw-test}
buses:
  - {name: b, protocol: mbus, device: /dev/null}
meters:
  - {id: m2, bus: b, address: 2}
buffer: {path: ` + filepath.Join(dir, "buf.db") + `}
mqtt: {broker: "tcp://127.0.0.1:1", username: u, password: s3cret, reconnect_max: 5s}
`
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Unsetenv(config.EnvMQTTPassword)
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	uc := UplinkConfig(cfg, "test")
	if uc.Password != "s3cret" || uc.PasswordEnv != "" || uc.PasswordFile != "" || uc.ReconnectMax != 5*time.Second {
		t.Fatalf("uplink config: password %q env %q file %q reconnect_max %s", uc.Password, uc.PasswordEnv, uc.PasswordFile, uc.ReconnectMax)
	}
	q, err := buffer.Open(filepath.Join(dir, "buf.db"), buffer.Options{Logger: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := uplink.New(uc, q, nil); err != nil {
		t.Fatalf("uplink with the password from the file: %v", err)
	}
}

func discardLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

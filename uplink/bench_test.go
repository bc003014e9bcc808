package uplink

import (
	"context"
	"os"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// BenchmarkDrainMosquitto drains a backlog (100,000 readings; 1,000,000 with
// TIDEGATE_LONG=1) from a real bbolt buffer to a local mosquitto at QoS 1,
// and beside it measures what mosquitto takes from a plain Go publisher for
// messages of the same size with the same in-flight window, in the same run.
// Metrics: readings/s, wire_B/reading, and vs_raw = uplink readings/s over
// the raw publisher's messages/s × readings per message.
func BenchmarkDrainMosquitto(b *testing.B) {
	needMosquitto(b)
	n := 100_000
	if os.Getenv("TIDEGATE_LONG") == "1" {
		n = 1_000_000
	}
	m := startMosquitto(b, "")
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		q := openBuffer(b)
		last := fill(b, q, n, 250)
		cfg := testConfig(m.url("tcp"))
		cfg.Batch.MaxLatency = time.Second
		u, err := New(cfg, q, quietLogEntry(b))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		stop := startUplink(b, u)
		for q.Cursor() != last {
			time.Sleep(5 * time.Millisecond)
		}
		el := time.Since(t0)
		b.StopTimer()
		stop()
		s := u.Stats()
		topic := len(u.t.readings)
		msgs := float64(s.Batches)
		// PUBLISH on the wire: fixed header (1 + up to 3 length bytes), topic
		// length + topic, packet id, payload; plus the 4-byte PUBACK.
		wire := float64(s.BytesSent) + msgs*float64(1+3+2+topic+2+4)
		rate := float64(last) / el.Seconds()
		perMsg := float64(last) / msgs
		payload := int(float64(s.BytesSent) / msgs)

		raw := rawPublish(b, m.url("tcp"), u.t.readings, payload, int(msgs), cfg.withDefaults().MaxInflight)
		b.ReportMetric(rate, "readings/s")
		b.ReportMetric(wire/float64(last), "wire_B/reading")
		b.ReportMetric(raw*perMsg, "raw_readings/s")
		b.ReportMetric(rate/(raw*perMsg), "vs_raw")
		b.Logf("%d readings in %s (%d messages of %d B, %.0f readings each); raw broker %.0f msg/s", last, el.Round(time.Millisecond), s.Batches, payload, perMsg, raw)
		b.StartTimer()
	}
}

// rawPublish sends count QoS 1 messages of size bytes with at most window
// unacknowledged, as fast as mosquitto takes them, and returns messages/s.
func rawPublish(b *testing.B, url, topic string, size, count, window int) float64 {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("raw-bench").SetCleanSession(true).SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer c.Disconnect(50)
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	var inflight []paho.Token
	for i := 0; i < count; i++ {
		if len(inflight) == window {
			inflight[0].Wait()
			inflight = inflight[1:]
		}
		inflight = append(inflight, c.Publish(topic+"-raw", 1, false, payload))
		if ctx.Err() != nil {
			b.Fatal(ctx.Err())
		}
	}
	for _, t := range inflight {
		t.Wait()
	}
	return float64(count) / time.Since(t0).Seconds()
}

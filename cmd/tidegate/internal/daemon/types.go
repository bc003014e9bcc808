package daemon

import (
	"time"

	"tidegate/cmd/tidegate/internal/datapath"
	"tidegate/reading"
)

// The control API's JSON bodies. The technician verbs decode the same types,
// so a field renamed here is renamed on both sides at once. A record (a
// meter's last reading, a live read, a tail line) is never given a shape of
// its own here: it is reading.RecordJSON, byte for byte what the uplink
// sends and `buffer export` writes.

// Status is GET /v1/status: one screen of health.
type Status struct {
	Gateway    string        `json:"gateway"`
	Version    string        `json:"version"`
	ConfigHash string        `json:"config_hash"`
	Started    time.Time     `json:"started"`
	UptimeS    float64       `json:"uptime_s"`
	Buses      []BusStatus   `json:"buses"`
	Meters     []MeterStatus `json:"meters"`
	Buffer     BufferStatus  `json:"buffer"`
	Broker     BrokerStatus  `json:"broker"`
	Stages     []string      `json:"stages"` // pipeline stages wired in this build, e.g. drivers, filter, buffer, uplink
	Parts      []PartStatus  `json:"parts"`  // every supervised part: bus/<name>, pipeline, uplink
	Reloads    int           `json:"reloads"`
	LastReload string        `json:"last_reload,omitempty"` // result of the last SIGHUP
	// Commands is who may act through the downlink.
	Commands CommandsStatus `json:"commands"`
	Warnings []string       `json:"warnings,omitempty"` // valid but unsafe settings (config validate says the same)
}

// CommandsStatus: the downlink's security settings.
type CommandsStatus struct {
	Enabled       bool     `json:"enabled"`
	KeyIDs        []string `json:"key_ids,omitempty"`        // kids of the keys that may sign commands
	UnsignedValve bool     `json:"unsigned_valve,omitempty"` // unsigned valve commands accepted (mqtt.unsigned_valve: allow)
}

// BusStatus is one bus's counters.
type BusStatus struct {
	Name       string  `json:"name"`
	Protocol   string  `json:"protocol"`
	Port       string  `json:"port"`
	State      string  `json:"state"` // running, reopening, line_noise, stopped, not wired
	Requests   uint64  `json:"requests"`
	Answers    uint64  `json:"answers"`
	Timeouts   uint64  `json:"timeouts"`
	CRCErrors  uint64  `json:"crc_errors"`
	Collisions uint64  `json:"collisions"` // several meters answered at once: an address used twice
	Errors     uint64  `json:"errors"`
	Efficiency float64 `json:"efficiency"` // wire time used for answered requests ÷ elapsed, 0..1; or answers/requests when the driver does not time it
	Error      string  `json:"error,omitempty"`
	// Restarts counts the times the bus's goroutine ended on its own (a
	// panic) and was started again; RestartError is the last reason.
	Restarts     uint64 `json:"restarts,omitempty"`
	RestartError string `json:"restart_error,omitempty"`
}

// MeterStatus is one meter's state and last reading.
type MeterStatus struct {
	ID     string              `json:"id"`
	Number string              `json:"number,omitempty"`
	Bus    string              `json:"bus"`
	State  string              `json:"state"`          // waiting, online, offline
	Last   *reading.RecordJSON `json:"last,omitempty"` // the record's one encoding, as the uplink sends it
}

// The data path's parts of Status (package datapath).
type (
	BufferStatus = datapath.BufferStatus
	BrokerStatus = datapath.BrokerStatus
	PartStatus   = datapath.PartStatus
)

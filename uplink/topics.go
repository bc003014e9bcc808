package uplink

// topics are built once; every name is under <prefix>/v1/<gateway>/ so a
// future v2 contract can run beside this one.
type topics struct {
	base, readings, events, status, ack, cmd string
}

func newTopics(prefix, gateway string) topics {
	b := gateway
	if prefix != "" {
		b = prefix + "/v1/" + gateway
	} else {
		b = "v1/" + gateway
	}
	return topics{
		base:     b,
		readings: b + "/readings",
		events:   b + "/events",
		status:   b + "/status",
		ack:      b + "/ack",
		cmd:      b + "/cmd/",
	}
}

// cmdResult is where the response to command id goes.
func (t topics) cmdResult(id string) string { return t.cmd + id + "/result" }

package uplink

import "github.com/eclipse/paho.mqtt.golang/packets"

// discardStore is a paho Store that keeps nothing, so paho never resends on
// its own after a reconnect. The buffer is the durable queue and the pump
// resends everything unacknowledged from it, in order; paho's own resend
// would put its in-flight messages ahead of earlier ones the broker had
// acknowledged and then lost, and is where upstream #563 completes tokens
// without a PUBACK. It is the memory store with nothing in it.
type discardStore struct{}

func (discardStore) Open()                             {}
func (discardStore) Put(string, packets.ControlPacket) {}
func (discardStore) Get(string) packets.ControlPacket  { return nil }
func (discardStore) All() []string                     { return nil }
func (discardStore) Del(string)                        {}
func (discardStore) Close()                            {}
func (discardStore) Reset()                            {}

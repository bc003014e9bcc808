package uplink

import paho "github.com/eclipse/paho.mqtt.golang"

// onCommand is filled in by the downlink (commands.go when present).
func (u *Uplink) onCommand(c paho.Client, topic string, payload []byte) {}

// CommandHandler is implemented by the daemon to serve downlink commands.
type CommandHandler interface{}

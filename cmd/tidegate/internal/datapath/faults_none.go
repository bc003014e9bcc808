//go:build !faultinject

package datapath

import (
	"github.com/sirupsen/logrus"

	"tidegate/buffer"
	"tidegate/pipeline"
	"tidegate/uplink"
)

// faultable is the buffer as the pipeline and the uplink use it: here the
// buffer itself. The soak test builds tidegate with -tags faultinject,
// whose faults_inject.go wraps it to fail calls on demand: a real process
// with failing appends and acks, and no switch in a production type.
func faultable(b *buffer.Buffer, _ *logrus.Logger) (pipeline.Store, uplink.Queue) { return b, b }

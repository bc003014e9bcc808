package uplink

import "errors"

var (
	// ErrConfig wraps every reason New refuses a configuration.
	ErrConfig = errors.New("uplink: invalid config")
	// ErrInsecure means a plain-TCP broker that is not on loopback was
	// configured without `insecure: true`: credentials and readings would
	// cross the network in clear text.
	ErrInsecure = errors.New("uplink: plain TCP to a non-loopback broker needs insecure: true")
	// ErrTLS wraps failures to load the CA, client certificate or key.
	ErrTLS = errors.New("uplink: TLS setup")
	// ErrPassword wraps failures to read the password file or variable.
	ErrPassword = errors.New("uplink: password")
	// ErrRunTwice: an Uplink runs once; make a new one to start again.
	ErrRunTwice = errors.New("uplink: Run called twice")
	// ErrNotDelivered means a batch's PUBACK did not arrive on the
	// connection it was sent on; it will be sent again.
	ErrNotDelivered = errors.New("uplink: batch not acknowledged by the broker")
)

package mbus

// C-field values and bits of EN 13757-2 (master to slave and slave to master).
const (
	// CSndNke resets the slave's link layer (answered with ACK E5).
	CSndNke byte = 0x40
	// CSndUd sends user data to the slave (FCB clear); OR with FCB to toggle.
	CSndUd byte = 0x53
	// CReqUd2 requests class 2 user data (FCB clear); CReqUd2|FCB = 0x7B.
	CReqUd2 byte = 0x5B
	// CReqUd1 requests class 1 (alarm) data (FCB clear); CReqUd1|FCB = 0x7A.
	CReqUd1 byte = 0x5A
	// CRspUd is the slave's user-data response (ACD clear); CRspUd|ACD = 0x18.
	CRspUd byte = 0x08

	// FCB is the frame count bit of master requests; the master toggles it
	// for each new request so the slave can tell a repeat from a new one.
	FCB byte = 0x20
	// FCV says the FCB is valid; a master request with FCV clear ignores FCB.
	FCV byte = 0x10
	// ACD is the access demand bit of slave responses (class 1 data waiting).
	ACD byte = 0x20
	// DFC is the data flow control bit of slave responses (slave busy).
	DFC byte = 0x10
	// PRM marks a frame from the primary station (master).
	PRM byte = 0x40
)

// Addresses with special meaning on the bus.
const (
	// AddrUnconfigured is the primary address of a meter that has none yet.
	AddrUnconfigured byte = 0x00
	// AddrNetworkLayer addresses the slave selected by secondary address.
	AddrNetworkLayer byte = 0xFD
	// AddrTest is answered by every slave (used for tests, with one slave).
	AddrTest byte = 0xFE
	// AddrBroadcast is heard by every slave and answered by none.
	AddrBroadcast byte = 0xFF
)

// CField is a link-layer control byte with accessors for its bits.
type CField byte

// FromMaster reports whether the PRM bit is set (master-to-slave frame).
func (c CField) FromMaster() bool { return byte(c)&PRM != 0 }

// FCB reports the frame count bit (meaningful on master frames with FCV).
func (c CField) FCB() bool { return byte(c)&FCB != 0 }

// FCV reports whether the frame count bit is valid.
func (c CField) FCV() bool { return byte(c)&FCV != 0 }

// Function returns the function code with FCB and FCV (or ACD and DFC)
// cleared, e.g. 0x7B → 0x5B (REQ_UD2), 0x18 → 0x08 (RSP_UD).
func (c CField) Function() byte { return byte(c) &^ (FCB | FCV) }

// IsSndNke reports whether c is SND_NKE.
func (c CField) IsSndNke() bool { return byte(c) == CSndNke }

// IsReqUd2 reports whether c is REQ_UD2 with either FCB value (0x5B, 0x7B).
func (c CField) IsReqUd2() bool { return byte(c)&^FCB == CReqUd2 }

// IsSndUd reports whether c is SND_UD with either FCB value (0x53, 0x73).
func (c CField) IsSndUd() bool { return byte(c)&^FCB == CSndUd }

// IsRspUd reports whether c is RSP_UD with either ACD value (0x08, 0x18 and
// with DFC 0x28, 0x38).
func (c CField) IsRspUd() bool { return c.Function() == CRspUd }

// WithFCB returns c with the FCB bit set or cleared.
func (c CField) WithFCB(set bool) CField {
	if set {
		return c | CField(FCB)
	}
	return c &^ CField(FCB)
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"

	"github.com/sirupsen/logrus"
)

// The control socket splits reading from acting. Whoever can open the
// socket (mode 0660, group api.group) may read: status, readings, tail,
// metrics. Acting — a valve movement, a read-now on the line — needs root,
// the daemon's own user, or membership of api.control_group. The caller
// is known from the socket (SO_PEERCRED), not from anything it says.

// ErrForbidden: the caller may read but not act.
var ErrForbidden = errors.New("forbidden")

// peer is the process at the other end of a control socket connection.
type peer struct {
	UID, GID uint32
	PID      int32
	Known    bool // false where the platform gives no credentials
}

func (p peer) String() string {
	if !p.Known {
		return "socket (caller unknown)"
	}
	return fmt.Sprintf("socket uid=%d gid=%d", p.UID, p.GID)
}

// access is what an endpoint needs.
type access int

const (
	accessRead access = iota
	accessControl
)

// authz decides from a caller's uid and gids alone, so it is tested
// without switching users.
type authz struct {
	self       uint32 // the daemon's uid
	controlGID int64  // -1: no control group configured
	groupsOf   func(uid uint32) []uint32
}

func (a authz) allow(p peer, need access) error {
	if need == accessRead {
		return nil // the socket's mode and group are the gate
	}
	if !p.Known {
		return fmt.Errorf("%w: the caller's identity is unknown on this platform", ErrForbidden)
	}
	if p.UID == 0 || p.UID == a.self {
		return nil
	}
	if a.controlGID >= 0 {
		if int64(p.GID) == a.controlGID {
			return nil
		}
		if a.groupsOf != nil {
			for _, g := range a.groupsOf(p.UID) {
				if int64(g) == a.controlGID {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%w: uid %d may read but not act; valve and read-now need root or api.control_group", ErrForbidden, p.UID)
}

// newAuthz resolves api.control_group once, at start.
func newAuthz(controlGroup string) (authz, error) {
	a := authz{self: uint32(os.Getuid()), controlGID: -1, groupsOf: userGroups}
	if controlGroup != "" {
		g, err := user.LookupGroup(controlGroup)
		if err != nil {
			return a, fmt.Errorf("api.control_group: %w", err)
		}
		gid, err := strconv.ParseInt(g.Gid, 10, 64)
		if err != nil {
			return a, fmt.Errorf("api.control_group %s: gid %q", controlGroup, g.Gid)
		}
		a.controlGID = gid
	}
	return a, nil
}

// userGroups are a user's supplementary groups from the group database.
func userGroups(uid uint32) []uint32 {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil
	}
	out := make([]uint32, 0, len(ids))
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil {
			out = append(out, uint32(g))
		}
	}
	return out
}

type peerKey struct{}

// withPeer is the socket server's ConnContext: the caller's credentials,
// read once per connection.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, peerOf(c))
}

func peerFrom(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}

// guard wraps a handler with the access it needs; every action is logged
// with its caller, a refusal too.
func (d *Daemon) guard(a authz, need access, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := peerFrom(r.Context())
		log := d.log.WithFields(logrus.Fields{"uid": p.UID, "gid": p.GID, "pid": p.PID, "path": r.URL.Path})
		if err := a.allow(p, need); err != nil {
			log.WithError(err).Warn("control API: refused")
			writeJSON(w, http.StatusForbidden, apiError{err.Error()})
			return
		}
		if need == accessControl {
			log.WithField("query", r.URL.RawQuery).Info("control API: action")
		}
		h(w, r)
	}
}

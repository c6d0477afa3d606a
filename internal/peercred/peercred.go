// Package peercred reads the kernel's record of who is on the other end of a unix
// socket: SO_PEERCRED (socket(7)) — the uid, gid and pid of the process that called
// connect(2), as the kernel recorded them then — and, from /proc, the executable of that
// pid. Callers use it to authorize local processes that hold no credential of their own
// (the SPIFFE Workload API, an outbound gate's socket).
package peercred

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Cred is a unix-socket peer as the kernel saw it at connect time.
type Cred struct {
	UID, GID uint32
	PID      int32
}

// ErrNotUnix is returned for a connection that is not a unix socket.
var ErrNotUnix = errors.New("peercred: not a unix socket")

// Of returns the SO_PEERCRED of c, which must be a *net.UnixConn (or wrap one and
// expose it through an Unwrap() net.Conn method).
func Of(c net.Conn) (Cred, error) {
	for {
		u, ok := c.(interface{ Unwrap() net.Conn })
		if !ok {
			break
		}
		c = u.Unwrap()
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Cred{}, ErrNotUnix
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Cred{}, fmt.Errorf("peercred: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, fmt.Errorf("peercred: %w", err)
	}
	if cerr != nil {
		return Cred{}, fmt.Errorf("peercred: SO_PEERCRED: %w", cerr)
	}
	return Cred{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}

// Exe returns the path of the executable of pid (/proc/PID/exe). Read it right after
// accepting the connection: the pid is the one that connected, and may exit or be
// reused later.
func Exe(pid int32) (string, error) {
	p, err := os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/exe")
	if err != nil {
		return "", fmt.Errorf("peercred: executable of pid %d: %w", pid, err)
	}
	return p, nil
}

package jsonl

import (
	"os"
	"slices"
	"syscall"
	"unsafe"
)

// datasync flushes f's data and the metadata needed to read it back (the
// size), skipping timestamps: cheaper than fsync for an append-only file.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// iovMax is Linux's IOV_MAX: the most ranges one writev(2) takes.
const iovMax = 1024

// writev writes bufs to f in order, in as few writev(2) calls as IOV_MAX
// allows, and returns how many bytes it wrote; short only with an error.
func writev(f *os.File, bufs [][]byte) (int64, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	bufs = slices.Clone(bufs) // advanced below as they are written
	iov := make([]syscall.Iovec, 0, min(len(bufs), iovMax))
	var total int64
	var errno syscall.Errno
	err = rc.Write(func(fd uintptr) bool {
		for len(bufs) > 0 {
			iov = iov[:0]
			for _, b := range bufs[:min(len(bufs), iovMax)] {
				v := syscall.Iovec{}
				if len(b) > 0 {
					v.Base = &b[0]
				}
				v.SetLen(len(b))
				iov = append(iov, v)
			}
			n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				errno = e
				return true
			}
			total += int64(n)
			if n == 0 {
				errno = syscall.EIO // no progress on a regular file: give up
				return true
			}
			for left := int(n); left > 0; {
				if left < len(bufs[0]) {
					bufs[0], left = bufs[0][left:], 0
				} else {
					left -= len(bufs[0])
					bufs = bufs[1:]
				}
			}
			for len(bufs) > 0 && len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
		}
		return true
	})
	if err != nil {
		return total, err
	}
	if errno != 0 {
		return total, &os.PathError{Op: "writev", Path: f.Name(), Err: errno}
	}
	return total, nil
}

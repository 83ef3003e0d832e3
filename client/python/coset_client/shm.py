"""Client side of cosetd's shared-memory side socket (protocol: server/shm_registry.h).

A region is a memfd sealed against shrinking, registered once over the side socket (the daemon's
Unix gRPC socket path + ".shm") with SCM_RIGHTS; requests then name it by its token and a byte
range instead of copying payloads through protobuf. The region lives as long as this object's
connection: closing it (or the process exiting) releases it on the daemon.
"""

import ctypes
import fcntl
import mmap
import os
import socket
import struct

# proto/shm_protocol.h: struct ShmRequest {u32 magic, u32 op, u64 size, char token[33]} (56 bytes
# with its padding) and struct ShmReply {u32 status, char token[33], char message[91]} (128).
_MAGIC = 0x4D485343  # "CSHM"
_OP_REGISTER = 1
_REQUEST = struct.Struct("<IIQ33s7x")
_REPLY = struct.Struct("<I33s91s")
assert _REQUEST.size == 56 and _REPLY.size == 128


class ShmError(OSError):
    """The daemon refused a region; `code` is the absl/gRPC status code number."""

    def __init__(self, code, message):
        super().__init__(f"shared-memory registration refused (code {code}): {message}")
        self.code = code


def _recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("cosetd closed the shared-memory socket")
        data += chunk
    return data


class SharedRegion:
    """One registered region of `size` bytes, mapped read-write in this process."""

    def __init__(self, side_socket_path, size, timeout=10.0):
        if size <= 0:
            raise ValueError(f"region size must be positive, got {size}")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        fd = -1
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(side_socket_path)
            fd = os.memfd_create("coset-region", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(fd, size)
            # The daemon maps the file without a guard: it refuses regions that could shrink.
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
            self._map = mmap.mmap(fd, size)
            socket.send_fds(self._sock, [_REQUEST.pack(_MAGIC, _OP_REGISTER, size, b"")], [fd])
            status, token, message = _REPLY.unpack(_recv_exactly(self._sock, _REPLY.size))
            if status != 0:
                raise ShmError(status, message.split(b"\0", 1)[0].decode(errors="replace"))
        except BaseException:
            self._sock.close()
            raise
        finally:
            if fd >= 0:
                os.close(fd)  # the mapping and the daemon's copy keep the memory
        self.size = size
        self.token = token.split(b"\0", 1)[0].decode()
        anchor = ctypes.c_char.from_buffer(self._map)
        self.address = ctypes.addressof(anchor)
        del anchor  # a live export would keep the mapping from ever closing

    def view(self):
        """A writable memoryview of the whole region."""
        return memoryview(self._map)

    def holds(self, array):
        """Whether `array`'s bytes lie inside this region (zero-copy requests); their offset or None."""
        start = array.__array_interface__["data"][0]
        if start < self.address or start + array.nbytes > self.address + self.size:
            return None
        return start - self.address

    def close(self):
        """Releases the region on the daemon (by closing its connection) and unmaps it here."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            try:
                self._map.close()
            except BufferError:
                pass  # numpy views still point into it: the mapping goes when they do

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

"""A typed Python client for cosetd (coset.v1 over gRPC, large arrays through shared memory).

    with coset_client.Client("unix:/run/coset/cosetd.sock") as c:
        blob, stats = c.encode(x, {"lattice": "D4", "q": 4, "M": 2})
        y = c.decode(blob)

Arrays are numpy float32 or float16 (float64 is converted to float32; float16 travels as is, in
half the bytes, and the blob records it); the last dimension is quantized. decode() returns a
blob's original dtype (float16 or float32) unless told otherwise. Arrays of at least
`shm_threshold_bytes`, and the blobs decoded to them, go through one shared-memory region per client
when the address is a Unix socket (README "Shared memory"), otherwise inline in the message.
Results are bit-identical to the C++ client and to the in-process codec. Every daemon error is
raised as CosetError with the gRPC status code name and message.
"""

import dataclasses
import struct
import threading

import grpc
import numpy as np

from coset_client import coset_pb2 as pb
from coset_client import coset_pb2_grpc as pb_grpc
from coset_client.shm import SharedRegion

DEFAULT_ADDRESS = "unix:/run/coset/cosetd.sock"

_SCALES = {"none": pb.SCALE_MODE_NONE, "rms": pb.SCALE_MODE_RMS, "absmax": pb.SCALE_MODE_ABSMAX}
_CAPS = {"fail": pb.CAP_POLICY_FAIL, "zero": pb.CAP_POLICY_ZERO}
# Sent with every call: the `client` label of cosetd's request metrics (proto/client_kind.h).
_METADATA = (("x-coset-client", "python"),)
# A blob is never larger than half its float32 input plus its headers (C++ client, same bound).
_BLOB_SLACK = 65536


class CosetError(Exception):
    """A request cosetd refused or could not serve: `code` is the gRPC status code name."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclasses.dataclass
class EncodeStats:
    chunks: int
    first_try_overloads: int
    capped: int
    stored_bits_per_entry: float


@dataclasses.dataclass
class TensorInfo:
    name: str
    shape: tuple
    lattice: str
    q: int
    M: int
    bytes: int


def codec_config(config):
    """A coset.v1.CodecConfig from a dict of its fields ("scale"/"on_cap" may be names)."""
    if isinstance(config, pb.CodecConfig):
        return config
    out = pb.CodecConfig()
    for key, value in (config or {}).items():
        if key == "scale" and isinstance(value, str):
            value = _SCALES[value]
        elif key == "on_cap" and isinstance(value, str):
            value = _CAPS[value]
        if key not in pb.CodecConfig.DESCRIPTOR.fields_by_name:
            raise ValueError(f"unknown codec field {key!r}; known: {sorted(pb.CodecConfig.DESCRIPTOR.fields_by_name)}")
        setattr(out, key, value)
    return out


def _codec_spec(config):
    spec = pb.CodecSpec()
    if isinstance(config, str):
        spec.config_id = config  # a RegisterConfig id
    else:
        spec.config.CopyFrom(codec_config(config))
    return spec


# numpy dtypes on the wire (coset.v1.DataType); numpy has no bfloat16.
_WIRE_DTYPES = {np.dtype(np.float32): pb.DATA_TYPE_FLOAT32, np.dtype(np.float16): pb.DATA_TYPE_FLOAT16,
                np.dtype(np.float64): pb.DATA_TYPE_FLOAT64}
_NUMPY_DTYPES = {v: k for k, v in _WIRE_DTYPES.items()}


def _as_wire(x):
    """A contiguous array as sent: float16 as is, float32 (float64 converted), or TypeError."""
    x = np.asarray(x)
    if x.dtype == np.float16:
        return np.ascontiguousarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"coset encodes float16, float32 or float64 arrays, got {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _set_input(tensor, x):
    """Fills a coset.v1.Tensor with x inline (x from _as_wire)."""
    tensor.shape.extend(x.shape)
    tensor.dtype = _WIRE_DTYPES[x.dtype]
    tensor.data = x.tobytes()


def _stats(s):
    return EncodeStats(s.chunks, s.first_try_overloads, s.capped, s.stored_bits_per_entry)


def _info(i):
    return TensorInfo(i.name, tuple(i.shape), i.lattice, i.q, i.M, i.bytes)


def _values(t, data=None):
    """A reply tensor's values (inline, or `data` read from the shared region), copied."""
    dtype = _NUMPY_DTYPES[t.dtype]
    return np.frombuffer(t.data if data is None else data, dtype=dtype).reshape(tuple(t.shape)).copy()


class Client:
    """One channel to cosetd. Thread-safe; the shared-memory region is used by one call at a time."""

    def __init__(self, address=DEFAULT_ADDRESS, *, timeout=60.0, shm_threshold_bytes=1 << 20,
                 max_message_bytes=256 << 20, credentials=None):
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        if credentials is not None:
            self._channel = grpc.secure_channel(address, credentials, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._stub = pb_grpc.CosetStub(self._channel)
        self._timeout = timeout
        self._shm_threshold = shm_threshold_bytes if address.startswith("unix:") else 0
        self._side_socket = address[len("unix:"):] + ".shm" if address.startswith("unix:") else None
        self._shm_lock = threading.Lock()
        self._region = None
        self._shared_bytes = 0  # the shared_array at the region's start
        self.used_shared_memory = False  # whether the last encode/decode went through the region

    # -- plumbing ---------------------------------------------------------------------------------

    def _call(self, method, request):
        try:
            return getattr(self._stub, method)(request, timeout=self._timeout, metadata=_METADATA)
        except grpc.RpcError as e:
            raise CosetError(e.code().name, e.details()) from None

    def _scratch(self):
        """Where requests put their payloads in the region: past the shared_array."""
        return (self._shared_bytes + 63) // 64 * 64

    def _region_for(self, nbytes):
        """The client's region with at least `nbytes` free from _scratch() on (None without a side
        socket). Growing it maps a new region: a shared_array keeps the old mapping and is then
        copied like any array."""
        if self._side_socket is None or self._shm_threshold <= 0:
            return None
        if self._region is None or self._region.size < self._scratch() + nbytes:
            size = max(nbytes, 2 * self._region.size if self._region else 0)
            self.close_shared()
            try:
                self._region = SharedRegion(self._side_socket, size)
            except OSError:
                return None  # no side socket, or refused: inline messages still work
        return self._region

    def close_shared(self):
        if self._region is not None:
            self._region.close()
            self._region = None
        self._shared_bytes = 0

    def shared_array(self, shape):
        """A float32 array inside the shared region: encode() of it sends no copy at all. Other
        large calls leave it alone (they use the region behind it, which has room for its blob and
        for a decode of the same size); it replaces the previous shared_array."""
        n = int(np.prod(shape))
        with self._shm_lock:
            self._shared_bytes = 0
            region = self._region_for(n * 4 + 64 + n * 4 + 2 * (n * 2 + _BLOB_SLACK))
            if region is None:
                raise CosetError("FAILED_PRECONDITION", "no shared-memory region (not a Unix-socket address?)")
            self._shared_bytes = n * 4
            return np.frombuffer(region.view(), dtype=np.float32, count=n).reshape(shape)

    # -- API ------------------------------------------------------------------------------------

    def health(self, service=""):
        """True when the standard gRPC health service reports SERVING ("" = the whole server)."""
        # grpc.health.v1 by hand (its stubs are not in Debian's python3-grpcio): HealthCheckRequest
        # is {string service = 1}, on the wire the same as GetTensorRequest {string name = 1};
        # HealthCheckResponse is {enum ServingStatus status = 1}, SERVING = 1.
        check = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda service: pb.GetTensorRequest(name=service).SerializeToString(),
            response_deserializer=lambda b: b[1] if b[:1] == b"\x08" else 0)
        try:
            return check(service, timeout=self._timeout, metadata=_METADATA) == 1  # SERVING
        except grpc.RpcError:
            return False

    def server_info(self):
        return self._call("ServerInfo", pb.ServerInfoRequest())

    def register_config(self, config):
        """Registers a configuration (its codebook is built once); returns its id for encode()."""
        return self._call("RegisterConfig", pb.RegisterConfigRequest(config=codec_config(config))).config_id

    def encode(self, x, config=None):
        """(blob bytes, EncodeStats): x compressed along its last dimension."""
        x = _as_wire(x)
        req = pb.EncodeRequest(codec=_codec_spec(config))
        req.input.shape.extend(x.shape)
        req.input.dtype = _WIRE_DTYPES[x.dtype]
        if x.nbytes >= self._shm_threshold > 0:
            with self._shm_lock:
                capacity = x.size * 2 + _BLOB_SLACK
                # Zero copy for the shared_array (its blob goes behind it); other arrays are copied
                # in behind it, their blob behind them.
                offset = self._region.holds(x) if self._region is not None else None
                if offset is not None and (offset + x.nbytes > self._shared_bytes
                                           or self._scratch() + capacity > self._region.size):
                    offset = None
                region = self._region if offset is not None else self._region_for(x.nbytes + 4 + capacity)
                if region is not None:
                    if offset is None:
                        offset = self._scratch()
                        out = (offset + x.nbytes + 3) // 4 * 4
                        np.frombuffer(region.view(), x.dtype, x.size, offset)[:] = x.reshape(-1)
                    else:
                        out = self._scratch()
                    req.input.shm.region, req.input.shm.offset, req.input.shm.length = region.token, offset, x.nbytes
                    req.output.region, req.output.offset, req.output.length = region.token, out, capacity
                    try:
                        resp = self._call("Encode", req)
                        self.used_shared_memory = True
                        return bytes(region.view()[out:out + resp.output_length]), _stats(resp.stats)
                    except CosetError as e:
                        # A restarted daemon no longer knows the region: drop it and go inline.
                        if e.code not in ("NOT_FOUND", "UNAVAILABLE"):
                            raise
                        self.close_shared()
                    req.input.ClearField("shm")
                    req.ClearField("output")
        self.used_shared_memory = False
        req.input.data = x.tobytes()
        resp = self._call("Encode", req)
        return resp.blob, _stats(resp.stats)

    def decode(self, blob, dtype=None):
        """The array a blob (bytes) or a resident tensor's name (str) holds: of `dtype` (float16,
        float32 or float64) when set, else a blob's original dtype (float32 for bfloat16 ones)
        and float32 for a name."""
        req = pb.DecodeRequest()
        is_blob = isinstance(blob, (bytes, bytearray, memoryview))
        numel = _blob_numel(blob) if is_blob else 0
        if dtype is None:
            dtype = _blob_dtype(blob) if is_blob else np.float32
        if np.dtype(dtype) not in _WIRE_DTYPES:
            raise TypeError(f"coset decodes to float16, float32 or float64, got {np.dtype(dtype)}")
        req.dtype = _WIRE_DTYPES[np.dtype(dtype)]
        nbytes = numel * np.dtype(dtype).itemsize
        if nbytes >= self._shm_threshold > 0:
            with self._shm_lock:
                # The blob goes into the region too (a copy, where a message's bytes cross the
                # socket at a fraction of that speed), the values come back behind it.
                region = self._region_for(len(blob) + 64 + nbytes)
                if region is not None:
                    start = self._scratch()
                    region.view()[start:start + len(blob)] = blob
                    req.codes.shm.region, req.codes.shm.offset, req.codes.shm.length = region.token, start, len(blob)
                    out = (start + len(blob) + 63) // 64 * 64
                    req.output.region, req.output.offset, req.output.length = region.token, out, nbytes
                    try:
                        resp = self._call("Decode", req)
                        self.used_shared_memory = True
                        return _values(resp.output, region.view()[out:out + nbytes])
                    except CosetError as e:
                        if e.code not in ("NOT_FOUND", "UNAVAILABLE"):
                            raise
                        self.close_shared()
                    req.ClearField("output")
        self.used_shared_memory = False
        req.codes.CopyFrom(self._codes(blob))
        return _values(self._call("Decode", req).output)

    def quantize(self, x, config=None):
        """decode(encode(x)) in one call (quantization-aware training)."""
        req = pb.QuantizeRequest(codec=_codec_spec(config))
        _set_input(req.input, _as_wire(x))
        return _values(self._call("Quantize", req).output)  # in x's dtype (float64: float32)

    def inner_product(self, weights, queries):
        """queries [K] or [B, K] against codes [N, K] (a blob or a resident tensor's name)."""
        req = pb.InnerProductRequest(weights=self._codes(weights))
        _set_input(req.queries, _as_wire(queries))  # the products come back float32
        return _values(self._call("InnerProduct", req).output)

    def put_tensor(self, name, blob=None, *, x=None, config=None, overwrite=False):
        """Keeps a compressed tensor in the daemon: from a blob, or x encoded there."""
        if (blob is None) == (x is None):
            raise ValueError("put_tensor takes either a blob or x (with config)")
        req = pb.PutTensorRequest(name=name, overwrite=overwrite)
        if blob is not None:
            req.blob = bytes(blob)
        else:
            req.encode.codec.CopyFrom(_codec_spec(config))
            _set_input(req.encode.input, _as_wire(x))
        return _info(self._call("PutTensor", req).info)

    def get_tensor(self, name):
        return self._call("GetTensor", pb.GetTensorRequest(name=name)).blob

    def delete_tensor(self, name):
        self._call("DeleteTensor", pb.DeleteTensorRequest(name=name))

    def list_tensors(self):
        return [_info(i) for i in self._call("ListTensors", pb.ListTensorsRequest()).tensors]

    def close(self):
        self.close_shared()
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def _codes(blob_or_name):
        if isinstance(blob_or_name, str):
            return pb.Codes(tensor_name=blob_or_name)
        return pb.Codes(blob=bytes(blob_or_name))


def _blob_dtype(blob):
    """The numpy dtype decode() returns for a blob: its original dtype (core/FORMAT.md, byte 11),
    float32 for bfloat16 (numpy has none) or a header it cannot read."""
    head = bytes(blob[:12])
    if len(head) < 12 or head[:4] != b"CSET":
        return np.float32
    return {1: np.float64, 3: np.float16}.get(head[11], np.float32)


def _blob_numel(blob):
    """Elements a blob decodes to, from its header (core/FORMAT.md: magic "CSET", rank at byte 13,
    int64 shape from byte 40), or 0 when it cannot tell (the daemon then says what is wrong)."""
    head = bytes(blob[:40 + 8 * 8])
    if len(head) < 40 or head[:4] != b"CSET" or head[13] > 8 or len(head) < 40 + 8 * head[13]:
        return 0
    shape = struct.unpack_from(f"<{head[13]}q", head, 40)
    return int(np.prod(shape)) if all(d >= 0 for d in shape) else 0

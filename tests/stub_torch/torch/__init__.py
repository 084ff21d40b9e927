"""A stand-in for PyTorch with just what scripts/torch_conv_bench.py calls, for testing that
script's control flow and output on a machine without PyTorch or a GPU (tests/test_gpu_scripts.py).
Time is virtual, so the figures are exact: each convolution advances a clock by
STUB_TORCH_CALL_MS milliseconds, and events read that clock. With STUB_TORCH_CUDNN_LIB, the
stub's cuDNN is that library, loaded as PyTorch loads its own (scripts/gpu_check.sh looks for it
in the process's memory map)."""
import ctypes
import os
import types

__version__ = "0.0-stub"
version = types.SimpleNamespace(cuda="0.0-stub")
CALLS = {"conv": 0}


float32, bfloat16, float16 = "float32", "bfloat16", "float16"
channels_last, contiguous_format = "channels_last", "contiguous_format"
# What the stub saw: dtypes and memory formats the tensors were converted to, autocast entries.
SEEN = {"to": set(), "memory_format": set(), "autocast": []}


class Tensor:
    def __init__(self, shape, dtype=float32, memory_format=contiguous_format):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.memory_format = memory_format

    def to(self, dtype):
        SEEN["to"].add(dtype)
        return Tensor(self.shape, dtype, self.memory_format)

    def contiguous(self, memory_format=contiguous_format):
        SEEN["memory_format"].add(memory_format)
        return Tensor(self.shape, self.dtype, memory_format)

    def __mul__(self, other):
        return self

    def __sub__(self, other):
        return self

    def sum(self, dims):
        return Tensor([self.shape[1]], self.dtype)


class autocast:
    """torch.autocast: the stub records the dtype it was entered with."""

    def __init__(self, device_type, dtype=None):
        self.dtype = dtype

    def __enter__(self):
        SEEN["autocast"].append(self.dtype)
        return self

    def __exit__(self, *exc):
        return False


def rand(*shape, device=None, generator=None):
    return Tensor(shape)


class Generator:
    def __init__(self, device=None):
        pass

    def manual_seed(self, seed):
        return self


CLOCK_MS = [0.0]


def _work():
    CALLS["conv"] += 1
    CLOCK_MS[0] += float(os.environ.get("STUB_TORCH_CALL_MS", "0.2"))


class _Event:
    def __init__(self, enable_timing=False):
        self.t = None

    def record(self):
        self.t = CLOCK_MS[0]

    def synchronize(self):
        pass

    def elapsed_time(self, other):
        return other.t - self.t


def _cudnn_version():
    lib = os.environ.get("STUB_TORCH_CUDNN_LIB")
    return ctypes.CDLL(lib).cudnnGetVersion() if lib else 91400


cuda = types.SimpleNamespace(
    is_available=lambda: True, synchronize=lambda: None, Event=_Event, empty_cache=lambda: None,
    get_device_name=lambda i: "stub GPU")
backends = types.SimpleNamespace(
    cudnn=types.SimpleNamespace(benchmark=False, deterministic=False, allow_tf32=True,
                                version=lambda: _cudnn_version()),
    cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=False)))

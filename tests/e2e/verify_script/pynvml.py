"""A stand-in for pynvml (nvidia-ml-py) over the fake libnvidia-ml.so: just the calls
scripts/verify-on-gpu.sh makes, through ctypes as the real module does."""
import ctypes
import os

_lib = None


class NVMLError(Exception):
    pass


def _call(name, *args):
    rc = getattr(_lib, name)(*args)
    if rc != 0:
        raise NVMLError(f"{name}: NVML error {rc}")


def nvmlInit():
    global _lib
    _lib = ctypes.CDLL(os.environ["FAKE_NVML_LIB"])
    _call("nvmlInit_v2")


def nvmlDeviceGetCount():
    n = ctypes.c_uint()
    _call("nvmlDeviceGetCount_v2", ctypes.byref(n))
    return n.value


def nvmlDeviceGetHandleByIndex(index):
    handle = ctypes.c_void_p()
    _call("nvmlDeviceGetHandleByIndex_v2", ctypes.c_uint(index), ctypes.byref(handle))
    return handle


def _text(name, handle):
    buf = ctypes.create_string_buffer(96)
    _call(name, handle, buf, ctypes.c_uint(96))
    return buf.value


def nvmlDeviceGetName(handle):
    return _text("nvmlDeviceGetName", handle)


def nvmlDeviceGetUUID(handle):
    return _text("nvmlDeviceGetUUID", handle)


def nvmlDeviceGetTotalEnergyConsumption(handle):
    mj = ctypes.c_ulonglong()
    _call("nvmlDeviceGetTotalEnergyConsumption", handle, ctypes.byref(mj))
    return mj.value


def nvmlDeviceGetPowerUsage(handle):
    mw = ctypes.c_uint()
    _call("nvmlDeviceGetPowerUsage", handle, ctypes.byref(mw))
    return mw.value

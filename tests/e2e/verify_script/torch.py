"""A stand-in for PyTorch with a CUDA GPU: a matmul is 2 ms of busy CPU. The fake NVML's power
follows its scenario, not this load."""
import os
import time


class _Cuda:
    @staticmethod
    def is_available():
        return os.environ.get("FAKE_TORCH_CUDA", "yes") == "yes"

    @staticmethod
    def synchronize():
        pass


cuda = _Cuda()


class _Tensor:
    def __matmul__(self, other):
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass
        return self


def randn(*shape, device=None):
    return _Tensor()

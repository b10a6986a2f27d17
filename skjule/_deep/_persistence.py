"""Pickling of estimators that hold a torch network."""

import copy

import torch

__all__ = ["NetworkPickleMixin"]


class NetworkPickleMixin:
    """Pickle ``network_`` with its tensors on the CPU; load it on ``device_``
    when that device exists, else on the CPU.

    A model trained on a GPU thus loads and predicts on a CPU-only machine
    (plain pickling would store CUDA tensors that cannot be loaded there).
    """

    def __getstate__(self):
        state = super().__getstate__()
        net = state.get("network_")
        if net is not None and any(
            t.device.type != "cpu" for t in list(net.parameters()) + list(net.buffers())
        ):
            state = dict(state, network_=copy.deepcopy(net).to("cpu"))
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        net = getattr(self, "network_", None)
        if net is not None:
            device = getattr(self, "device_", torch.device("cpu"))
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
            self.device_ = device
            self.network_ = net.to(device).eval()

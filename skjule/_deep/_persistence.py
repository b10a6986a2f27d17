"""Pickling of estimators that hold a torch network."""

import io
import pickle

import torch

from ._networks import copy_module, script_from_bytes, script_to_bytes

__all__ = ["NetworkPickleMixin"]


class _ScriptPickler(pickle.Pickler):
    """Pickles each TorchScript module, which pickle refuses, as its
    ``torch.jit.save`` bytes (loaded back with ``torch.jit.load``)."""

    def reducer_override(self, obj):
        if isinstance(obj, torch.jit.ScriptModule):
            return script_from_bytes, (script_to_bytes(obj),)
        return NotImplemented


class _WithScripts:
    """Stands in for a module holding TorchScript when pickled: the module is
    pickled by :class:`_ScriptPickler` and comes back as itself on loading."""

    def __init__(self, module):
        buf = io.BytesIO()
        _ScriptPickler(buf).dump(module)
        self.data = buf.getvalue()

    def __reduce__(self):
        return pickle.loads, (self.data,)


def _has_scripts(value):
    return isinstance(value, torch.nn.Module) and any(
        isinstance(m, torch.jit.ScriptModule) for m in value.modules()
    )


class NetworkPickleMixin:
    """Pickle ``network_`` with its tensors on the CPU; load it on ``device_``
    when that device exists, else on the CPU.

    A model trained on a GPU thus loads and predicts on a CPU-only machine
    (plain pickling would store CUDA tensors that cannot be loaded there).
    Modules holding TorchScript (``network_``, or a ``backbone`` from
    ``torch.jit.load``) are stored with each TorchScript part as its
    ``torch.jit.save`` bytes, since pickle refuses TorchScript modules.
    """

    def __getstate__(self):
        state = super().__getstate__()
        net = state.get("network_")
        if net is not None and any(
            t.device.type != "cpu" for t in list(net.parameters()) + list(net.buffers())
        ):
            state = dict(state, network_=copy_module(net).to("cpu"))
        scripts = {k: _WithScripts(v) for k, v in state.items() if _has_scripts(v)}
        return dict(state, **scripts) if scripts else state

    def __setstate__(self, state):
        super().__setstate__(state)
        net = getattr(self, "network_", None)
        if net is not None:
            device = getattr(self, "device_", torch.device("cpu"))
            if device.type == "cuda" and not torch.cuda.is_available():
                device = torch.device("cpu")
            self.device_ = device
            self.network_ = net.to(device).eval()

"""Reads a PyTorch state dict (a `torch.save` zip archive) into numpy arrays, without torch.

CAM++'s weights ship as such a file. `torch.load` would need torch (700 MB) at run time, and
unpickling runs whatever the pickle names; this reader knows the archive layout (`data.pkl`
naming each tensor's storage file under `data/`) and its unpickler resolves only the names a
state dict of plain tensors uses, refusing any other object the file might ask for.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

# torch storage classes -> element types (the names a state dict's pickle refers to).
_STORAGES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


def _tensor(storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2: a strided view of the storage, copied out."""
    if not size:
        return storage[offset : offset + 1].reshape(()).copy()
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[step * storage.itemsize for step in stride]
    )
    return np.ascontiguousarray(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, root: str) -> None:
        super().__init__(archive.open(f"{root}/data.pkl"))
        self._archive = archive
        self._root = root

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGES:
            return name
        raise pickle.UnpicklingError(f"a state dict holds tensors only, not {module}.{name}")

    def persistent_load(self, pid: Any) -> np.ndarray:
        kind, storage, key, _location, _count = pid
        if kind != "storage" or storage not in _STORAGES:
            raise pickle.UnpicklingError(f"unknown storage {pid!r}")
        data = self._archive.read(f"{self._root}/data/{key}")
        return np.frombuffer(data, dtype=np.dtype(_STORAGES[storage]).newbyteorder("<"))


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the state dict at `path`, by its key."""
    with zipfile.ZipFile(path) as archive:
        root = archive.namelist()[0].split("/")[0]
        state = _Unpickler(archive, root).load()
    if not isinstance(state, dict) or not all(isinstance(value, np.ndarray) for value in state.values()):
        raise pickle.UnpicklingError(f"{path} is not a state dict of tensors")
    return dict(state)

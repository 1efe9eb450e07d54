"""Checkpoints: a run's arrays plus JSON metadata in one NPZ, written atomically and read
without unpickling, checked before anything large is read."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from .config import TrainConfig, make_task
from .models import model_classes
from .tasks import Task

CHECKPOINT_VERSION = 1
CHECKPOINT_MAX_BYTES = 2**30  # a checkpoint declaring more is refused before anything is read


class CheckpointError(ValueError):
    """A checkpoint file that is missing, damaged or does not fit the model."""


def save_checkpoint(path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Plain arrays plus JSON metadata in one NPZ, written under a temporary name and renamed."""
    write_atomic(Path(path), lambda f: np.savez(f, **arrays, meta=np.array(json.dumps(meta))))


def write_atomic(path: Path, write) -> None:
    """``write(binary file)`` into a temporary file beside ``path``, renamed to it when complete."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def load_checkpoint(path, arrays: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint without unpickling; CheckpointError with one line on any problem.

    Its metadata is read and checked first, and the arrays' declared sizes are summed from their
    headers before any array is read, so that a small file cannot make this allocate much. With
    ``arrays=False`` only the metadata is read (the arrays come back as {}).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    with open(path, "rb") as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise CheckpointError(f"{path}: not an attnviz checkpoint (not an NPZ file; a checkpoint is the "
                                  "checkpoint.npz or best.npz of a run folder)")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "meta.npy" not in names:
                raise CheckpointError(f"{path}: not an attnviz checkpoint (no 'meta' entry)")
            declared = {}
            for name in names:
                with z.open(name) as fp:
                    version = np.lib.format.read_magic(fp)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(fp)
                if dtype.hasobject:
                    raise CheckpointError(f"{path}: {name} is an object array; checkpoints hold plain numbers")
                declared[name] = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if declared["meta.npy"] > 2**20 or sum(declared.values()) > CHECKPOINT_MAX_BYTES:
                raise CheckpointError(f"{path}: declares {sum(declared.values()) / 2**20:,.0f} MiB of arrays, more "
                                      f"than a checkpoint of this model holds (at most {CHECKPOINT_MAX_BYTES // 2**20}"
                                      " MiB); not an attnviz checkpoint")
            with z.open("meta.npy") as fp:
                meta = json.loads(str(np.lib.format.read_array(fp, allow_pickle=False)[()]))
            if not isinstance(meta, dict) or meta.get("checkpoint_version") != CHECKPOINT_VERSION:
                raise CheckpointError(f"{path}: not an attnviz checkpoint of version {CHECKPOINT_VERSION}")
            out = {}
            for name in names if arrays else ():
                if name != "meta.npy":
                    with z.open(name) as fp:
                        out[name.removesuffix(".npy")] = np.lib.format.read_array(fp, allow_pickle=False)
    except CheckpointError:
        raise
    except Exception as e:  # zip, zlib, npy and JSON errors alike
        raise CheckpointError(f"{path}: damaged checkpoint ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                              ) from None
    return out, meta


def assign(target: dict, arrays: dict, prefix: str, path) -> None:
    """Copy ``arrays[prefix + k]`` into every ``target[k]`` in place, checking names and shapes."""
    for k, v in target.items():
        key = prefix + k
        if key not in arrays:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
        if np.shape(arrays[key]) != np.shape(v):
            raise CheckpointError(f"{path}: {key!r} has shape {np.shape(arrays[key])}, the model needs {np.shape(v)}")
        target[k][...] = arrays[key]  # in place: parameters may live in memory shared with workers


def recorded_config(meta: dict) -> TrainConfig:
    """The TrainConfig a checkpoint was trained with. Its model options are taken from the checkpoint's
    whole model config, not from the task's model defaults of today: a run from before a task set an
    option (N-grams' read_gate_bias, priority sort's learn_memory) ran without it, and a model field
    that did not exist then reads as its default, the behaviour from before the field."""
    cfg = TrainConfig.from_dict(meta["train"])
    config_class, _ = model_classes(cfg.architecture)
    model = config_class.from_dict(meta["model"]).to_dict()
    cfg.model = {k: model[k] for k in cfg.model}
    return cfg


def load_model(path) -> tuple[object, Task, dict]:
    """A trained model from a checkpoint (the latest or the best), with its task and metadata."""
    arrays, meta = load_checkpoint(path)
    try:
        cfg = recorded_config(meta)
        task = make_task(cfg)
        config_class, model_class = model_classes(cfg.architecture)
        model = model_class(config_class.from_dict(meta["model"]), {})
        params = model_class.create(model.cfg, seed=0).params
        assign(params, arrays, "param/", path)
        model.params = params
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: checkpoint does not match this model ({e})") from None
    return model, task, meta

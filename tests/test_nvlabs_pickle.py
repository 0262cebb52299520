"""The restricted NVlabs network-pickle reader and checkpoint format detection.

The fixture pickles in tests/data/stylegan2 were written by the official
stylegan2-ada-pytorch code (tests/fixtures/make_stylegan2_fixtures.py). Malicious pickles
are made here: each would create a marker file if anything from it ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tensorpanda.adapters.checkpoints import (  # noqa: E402
    detect_format,
    read_torch_checkpoint,
)
from tensorpanda.adapters.nvlabs_pickle import (  # noqa: E402
    PersistentRecord,
    UnsafeCheckpointError,
    load_network_pickle,
)

DATA = Path(__file__).parent / "data" / "stylegan2"
SKIP_PKL = DATA / "sg2_skip_uncond.pkl"

# Marker text the reader uses to tell the official modules apart (the source is never run).
_SOURCES = {
    "training.networks": "class SynthesisBlock(torch.nn.Module):\n    pass\n",
    "training.networks_stylegan2": (
        "class SynthesisBlock(torch.nn.Module):\n    fused_modconv_default = True\n"
    ),
    "training.networks_stylegan3": "class SynthesisInput(torch.nn.Module):\n    pass\n",
    "training.augment": "class AugmentPipe(torch.nn.Module):\n    pass\n",
    "unknown": "",
}


def _fake_reconstruct(meta):  # only its importable name matters: it is never called
    raise AssertionError("never called")


@contextlib.contextmanager
def _fake_persistence_module():
    """Make ``torch_utils.persistence._reconstruct_persistent_obj`` importable for pickle."""
    package = types.ModuleType("torch_utils")
    module = types.ModuleType("torch_utils.persistence")
    _fake_reconstruct.__module__ = "torch_utils.persistence"
    _fake_reconstruct.__qualname__ = "_reconstruct_persistent_obj"
    module._reconstruct_persistent_obj = _fake_reconstruct
    package.persistence = module
    saved = {name: sys.modules.get(name) for name in ("torch_utils", "torch_utils.persistence")}
    sys.modules["torch_utils"], sys.modules["torch_utils.persistence"] = package, module
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value


class _NetworkPickler(pickle.Pickler):
    """Pickles PersistentRecords as NVlabs persistent objects (meta dict + hook call)."""

    def reducer_override(self, obj):
        if isinstance(obj, PersistentRecord):
            state = dict(obj.state)
            state["_init_kwargs"] = obj.init_kwargs
            meta = dict(type="class", version=6, module_src=_SOURCES[obj.module_name],
                        class_name=obj.class_name, state=state)
            return _fake_reconstruct, (meta,)
        return NotImplemented


def write_network_pickle(path: Path, data: dict) -> Path:
    """Write ``data`` (records included) in the NVlabs network-pickle layout."""
    with _fake_persistence_module(), open(path, "wb") as f:
        _NetworkPickler(f, protocol=4).dump(data)
    return path


def replace_record(record: PersistentRecord, **changes) -> PersistentRecord:
    """A copy of ``record`` with fields replaced (records are frozen)."""
    return dataclasses.replace(record, **changes)


# -- a real network pickle ---------------------------------------------------------------


def test_real_pickle_records_and_state():
    data = load_network_pickle(SKIP_PKL)
    assert set(data) == {"training_set_kwargs", "G", "D", "G_ema", "augment_pipe"}
    assert type(data["training_set_kwargs"]) is dict
    assert data["training_set_kwargs"]["resolution"] == 32
    g = data["G_ema"]
    assert isinstance(g, PersistentRecord)
    assert (g.module_name, g.class_name) == ("training.networks", "Generator")
    assert g.init_kwargs == {
        "z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": 32, "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"channel_base": 256, "channel_max": 64, "num_fp16_res": 4,
                             "conv_clamp": 256, "architecture": "skip"},
    }
    assert type(g.init_kwargs["mapping_kwargs"]) is dict  # EasyDict became plain
    synthesis = g.state["_modules"]["synthesis"]
    assert (synthesis.class_name, synthesis.state["num_ws"]) == ("SynthesisNetwork", 8)
    state = g.state_dict()
    assert state["synthesis.b4.const"].shape == (64, 4, 4)
    assert state["synthesis.b32.torgb.weight"].shape == (3, 8, 1, 1)
    assert state["mapping.fc1.weight"].shape == (32, 32)
    assert state["mapping.w_avg"].shape == (32,)
    assert state["synthesis.b8.conv0.noise_const"].shape == (8, 8)
    assert all(type(t) is torch.Tensor and t.dtype == torch.float32 for t in state.values())
    assert not any(t.requires_grad for t in state.values())
    assert len(state) == 75
    # G_ema was a copy of G when the fixture was written.
    g_state = data["G"].state_dict()
    assert all(torch.equal(g_state[k], v) for k, v in state.items())
    assert data["D"].class_name == "Discriminator"
    assert data["augment_pipe"].module_name == "training.augment"


def test_state_dict_leaves_out_non_persistent_buffers():
    child = PersistentRecord("unknown", "Child", {}, {
        "_parameters": OrderedDict(w=torch.ones(2), b=None),
        "_buffers": OrderedDict(kept=torch.zeros(1), dropped=torch.zeros(1)),
        "_non_persistent_buffers_set": {"dropped"},
        "_modules": OrderedDict(),
    })
    parent = PersistentRecord("unknown", "Parent", {}, {
        "_parameters": OrderedDict(), "_buffers": OrderedDict(),
        "_modules": OrderedDict(child=child, empty=None),
    })
    assert sorted(parent.state_dict()) == ["child.kept", "child.w"]


def test_round_trip_through_the_network_writer(tmp_path):
    data = load_network_pickle(SKIP_PKL)
    path = write_network_pickle(tmp_path / "copy.pkl", {"G_ema": data["G_ema"]})
    again = load_network_pickle(path)
    assert again["G_ema"].init_kwargs == data["G_ema"].init_kwargs
    old, new = data["G_ema"].state_dict(), again["G_ema"].state_dict()
    assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old)


def test_numpy_scalars_and_arrays_load(tmp_path):
    path = tmp_path / "np.pkl"
    payload = {"gain": np.float64(0.5), "size": np.broadcast_to(np.asarray(16), [2]),
               "f32": np.arange(3, dtype=np.float32), "set": {1, 2}}
    with open(path, "wb") as f:
        pickle.dump(payload, f, protocol=2)
    out = load_network_pickle(path)
    assert out["gain"] == 0.5 and isinstance(out["gain"], np.floating)
    np.testing.assert_array_equal(out["size"], [16, 16])
    np.testing.assert_array_equal(out["f32"], [0, 1, 2])
    assert out["set"] == {1, 2}


# -- refused, and nothing runs -----------------------------------------------------------


def _marker_command(marker: Path) -> str:
    return f"touch {marker}"


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (_marker_command(self.marker),)


class _Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


class _Blob:
    """A storage blob whose inner torch pickle calls os.system."""

    def __init__(self, marker):
        buffer = io.BytesIO()
        torch.save(_System(marker), buffer, _use_new_zipfile_serialization=False)
        self.blob = buffer.getvalue()

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.blob,)


class _ObjectScalar:
    def __reduce__(self):
        return np.float64(0).__reduce__()[0], (np.dtype(object), b"\x00" * 8)


@pytest.mark.parametrize(
    ("make", "refused"),
    [
        (lambda m: {"G_ema": _System(m)}, "system"),
        (lambda m: {"G_ema": _Eval(m)}, "builtins.eval"),
        (lambda m: {"G_ema": _Blob(m)}, "weights-only"),
        (lambda m: {"x": _ObjectScalar()}, "object dtype"),
    ],
    ids=["os.system", "eval", "storage-blob", "numpy-object"],
)
def test_malicious_pickle_is_refused_and_does_not_run(tmp_path, make, refused):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump(make(marker), f)
    with pytest.raises(UnsafeCheckpointError, match=refused) as info:
        load_network_pickle(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_payload_inside_a_real_network_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    data = load_network_pickle(SKIP_PKL)
    g = data["G_ema"]
    evil = replace_record(g, init_kwargs={**g.init_kwargs, "hook": _System(marker)})
    path = write_network_pickle(tmp_path / "evil.pkl", {"G_ema": evil})
    assert detect_format(path) == "nvlabs-pickle"  # detection only scans: nothing runs
    with pytest.raises(UnsafeCheckpointError, match=r"posix\.system|nt\.system"):
        load_network_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        # BUILD on an allowed function: would set attributes of the reader's own code.
        (b"\x80\x04ctorch_utils.persistence\n_reconstruct_persistent_obj\n"
         b"}X\x07\x00\x00\x00__doc__X\x01\x00\x00\x00xsb.", "setting the state"),
        # NEWOBJ of an ndarray: uninitialised memory.
        (b"\x80\x04cnumpy\nndarray\nK\x10\x85\x81.", "creating an instance"),
        # A name outside the allow-list from an allowed module.
        (b"\x80\x04ctorch\nload\n.", "torch.load"),
        # A persistent id (torch.save's format, not a network pickle).
        (b"\x80\x04X\x01\x00\x00\x00xQ.", "persistent id"),
    ],
    ids=["build-on-function", "newobj-ndarray", "torch.load", "persistent-id"],
)
def test_hand_made_opcodes_are_refused(tmp_path, payload, refused):
    path = tmp_path / "crafted.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafeCheckpointError, match=refused):
        load_network_pickle(path)


# -- bad files ---------------------------------------------------------------------------


def test_truncated_pickle(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(SKIP_PKL.read_bytes()[: SKIP_PKL.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or corrupt") as info:
        load_network_pickle(path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="truncated or corrupt") as info:
        detect_format(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        load_network_pickle(tmp_path / "nope.pkl")
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        detect_format(tmp_path / "nope.pkl")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        read_torch_checkpoint(tmp_path / "nope.pt")


def test_zip_is_not_a_network_pickle(tmp_path):
    path = tmp_path / "g.pt"
    torch.save({"g_ema": {}}, path)
    with pytest.raises(ValueError, match="zip archive"):
        load_network_pickle(path)


# -- format detection and torch checkpoints ----------------------------------------------


def test_detect_formats(tmp_path):
    assert detect_format(SKIP_PKL) == "nvlabs-pickle"
    torch.save({"g_ema": {"w": torch.zeros(1)}, "latent_avg": torch.zeros(2)}, tmp_path / "r.pt")
    assert detect_format(tmp_path / "r.pt") == "rosinality"
    torch.save({"generator_smooth": {"w": torch.zeros(1)}}, tmp_path / "g.pth")
    assert detect_format(tmp_path / "g.pth") == "genforce"
    torch.save({"generator": {"w": torch.zeros(1)}}, tmp_path / "g2.pth",
               _use_new_zipfile_serialization=False)
    assert detect_format(tmp_path / "g2.pth") == "genforce"


def test_detect_format_errors_say_what_was_found(tmp_path):
    torch.save({"model": {}, "optimizer": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt.*found keys: model, optimizer"):
        detect_format(tmp_path / "other.pt")
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump({"G": 1}, f)
    with pytest.raises(ValueError, match=r"plain\.pkl.*no G_ema"):
        detect_format(tmp_path / "plain.pkl")
    (tmp_path / "text.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"text\.txt.*not a recognised checkpoint"):
        detect_format(tmp_path / "text.txt")


def test_read_torch_checkpoint_errors(tmp_path):
    path = tmp_path / "g.pt"
    torch.save({"g_ema": {"w": torch.arange(1000.0)}}, path)
    assert torch.equal(read_torch_checkpoint(path)["g_ema"]["w"], torch.arange(1000.0))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"cut\.pt.*truncated or corrupt"):
        read_torch_checkpoint(cut)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt.*not a dict"):
        read_torch_checkpoint(tmp_path / "list.pt")
    marker = tmp_path / "pwned"
    torch.save({"g_ema": _System(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt"):
        read_torch_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()

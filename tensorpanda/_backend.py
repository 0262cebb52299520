"""The few operations that need care across TensorLy backends (numpy, pytorch, jax).

Everything else goes through ``tl.*``. Here: converting foreign arrays, creating tensors in a
context, sorted eigenpairs with a deterministic sign, and reading scalars back to the host.
"""

from __future__ import annotations

import numpy as np
import tensorly as tl


def backend_name() -> str:
    """The active TensorLy backend's name."""
    return tl.get_backend()


def is_foreign_torch(x) -> bool:
    """True for a torch tensor (detected without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def check_materialised(x, what: str = "the tensor") -> None:
    """A clear ValueError for a torch tensor on the meta device (a shape without values)."""
    if is_foreign_torch(x) and getattr(getattr(x, "device", None), "type", None) == "meta":
        raise ValueError(
            f"{what} has no data: it is on the meta device (a tensor with a shape but no "
            "values). Materialise it first: run the model on a real device ('cpu' or 'cuda'), "
            "or use model.to_empty(device=...) and load its weights"
        )


def _torch_to_numpy(x) -> np.ndarray:
    """A torch tensor as a numpy array; floats numpy lacks (bfloat16, float8) become float32."""
    check_materialised(x)
    t = x.detach().cpu()
    if t.dtype.is_floating_point and t.dtype.itemsize < 4:
        try:
            return t.numpy()  # float16 has a numpy twin
        except TypeError:
            return t.float().numpy()  # exact: every bfloat16/float8 value is a float32
    return t.resolve_conj().resolve_neg().numpy()


def native(arr: np.ndarray) -> np.ndarray:
    """``arr`` in the machine's byte order (torch refuses big-endian arrays; no copy if native)."""
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def _numpy_twin(torch_dtype):
    """The numpy dtype of a torch dtype (None for none, or one numpy lacks, e.g. bfloat16)."""
    if torch_dtype is None:
        return None
    try:
        return np.dtype(str(torch_dtype).replace("torch.", ""))
    except TypeError:
        return None


def in_host_memory(x) -> bool:
    """Whether an array lives in host memory: numpy, or a torch or jax array on a CPU."""
    if is_foreign_torch(x):
        return x.device.type == "cpu"
    devices = getattr(x, "devices", None)
    if callable(devices) and type(x).__module__.startswith("jax"):
        return all(d.platform == "cpu" for d in devices())
    return True  # numpy and other array-likes, which are read through numpy


def to_host(x) -> np.ndarray:
    """Any array-like (numpy, torch, jax, TensorLy) as a numpy array, without importing torch."""
    if is_foreign_torch(x):
        return _torch_to_numpy(x)
    return np.asarray(x)


def to_backend(x, context: dict | None = None):
    """An array-like as a tensor of the active backend in ``context`` (no copy if none needed)."""
    name = tl.get_backend()
    context = dict(context or {})
    context.pop("requires_grad", None)
    check_materialised(x)
    if name == "pytorch":
        import torch  # the pytorch backend is active: torch is already imported

        if isinstance(x, torch.Tensor):
            t = x.detach()
        else:
            arr = to_host(x)
            # numpy converts what torch cannot take (big-endian, longdouble, ml_dtypes'
            # bfloat16) straight to the target precision: one copy, no raw torch error
            target = _numpy_twin(context.get("dtype"))
            arr = native(arr) if target is None else arr.astype(target, copy=False)
            t = torch.from_numpy(np.ascontiguousarray(arr))
        return t.to(**context) if context else t
    if name == "numpy":
        arr = to_host(x)
        dtype = context.get("dtype")
        return arr.astype(dtype, copy=False) if dtype is not None else native(arr)
    if name == "jax":
        import jax.numpy as jnp

        source = x if type(x).__module__.startswith("jax") else native(to_host(x))
        return jnp.asarray(source, dtype=context.get("dtype"))
    return tl.tensor(native(to_host(x)), **context)


def context_of(x) -> dict:
    """``tl.context`` without ``requires_grad`` (factors are plain tensors)."""
    ctx = dict(tl.context(x))
    ctx.pop("requires_grad", None)
    return ctx


def tensor(array, context: dict):
    """A backend tensor holding ``array`` (numpy) in ``context`` (dtype, device)."""
    return to_backend(np.asarray(array), context)


def scalar(x) -> float:
    """A backend scalar as a Python float (one host sync on accelerators)."""
    return float(tl.to_numpy(x))


def dtype_name(context: dict) -> str:
    """'float32' or 'float64' for a backend context."""
    dtype = context["dtype"]
    if type(dtype).__module__.startswith("torch"):
        return str(dtype).replace("torch.", "")
    return np.dtype(dtype).name


def min_along(x, axis: int):
    """The minimum along one axis as a plain tensor on every backend (TensorLy's ``min``
    with an axis returns torch's (values, indices) pair on the pytorch backend)."""
    return -tl.max(-x, axis=axis)


def positive_part(x):
    """[x]⁺ = max(x, 0) elementwise, written as (|x| + x)/2 to be the same on every backend."""
    return (tl.abs(x) + x) / 2


def negative_part(x):
    """[x]⁻ = max(−x, 0) elementwise, so that x = [x]⁺ − [x]⁻."""
    return (tl.abs(x) - x) / 2


def sym(x):
    """The symmetric part of a square matrix (removes rounding asymmetry before eigh)."""
    return (x + tl.transpose(x)) / 2


def top_eigh(K, k: int):
    """The ``k`` largest eigenpairs of a symmetric matrix, in decreasing order.

    Each eigenvector's sign is fixed so that its entry of largest magnitude is positive:
    results then agree across backends and runs.
    """
    values, vectors = tl.eigh(sym(K))
    values = tl.flip(values, axis=0)[:k]
    vectors = tl.flip(vectors, axis=1)[:, :k]
    return values, fix_signs(vectors)


def fix_signs(U):
    """Flip columns so that the largest-magnitude entry of each column is positive."""
    host = tl.to_numpy(U)
    rows = np.argmax(np.abs(host), axis=0)
    signs = np.sign(host[rows, np.arange(host.shape[1])])
    signs[signs == 0] = 1.0
    return U * tensor(signs.astype(host.dtype), context_of(U))


def orthonormal_basis(A):
    """An orthonormal basis of the columns of ``A`` (A itself when already orthonormal)."""
    Q, R = tl.qr(A)
    # make the basis unique: positive diagonal of R, so QR of an orthonormal A returns A
    d = tl.to_numpy(tl.diag(R)) if tl.ndim(R) == 2 else None
    signs = np.where(np.asarray(d) < 0, -1.0, 1.0).astype(tl.to_numpy(Q).dtype)
    return Q * tensor(signs, context_of(Q))


def psd_pinv(H, rtol: float | None = None):
    """Pseudo-inverse of a small symmetric positive semi-definite matrix, by eigh.

    Eigenvalues below ``rtol`` times the largest are treated as zero, so a factor that lost
    a column does not blow up the cores.
    """
    values, vectors = tl.eigh(sym(H))
    host = tl.to_numpy(values)
    if rtol is None:
        rtol = 100 * float(np.finfo(host.dtype).eps) * max(host.shape[0], 1)
    cutoff = rtol * max(float(np.max(host)), 0.0)
    inv = np.where(host > cutoff, 1.0 / np.where(host > cutoff, host, 1.0), 0.0)
    inv = tensor(inv.astype(host.dtype), context_of(H))
    return tl.dot(vectors * inv, tl.transpose(vectors))


def spectral_norm_psd(K) -> float:
    """Largest eigenvalue of a symmetric PSD matrix (exact, via eigh)."""
    return max(float(np.max(tl.to_numpy(tl.eigh(sym(K))[0]))), 0.0)


def random_state(seed) -> np.random.RandomState:
    """A numpy RandomState from None, an int, or a RandomState."""
    if isinstance(seed, np.random.RandomState):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.RandomState(seed)
    raise TypeError(
        f"random_state must be None, an int or a numpy RandomState, not {type(seed).__name__}"
    )

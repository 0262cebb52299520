"""Tests of adapters.hooks: Trace registers one hook only while active and always removes it."""

import pytest
import torch
from torch import nn

from tensorpanda.adapters import Trace, assert_no_hooks, forward_hooks
from tensorpanda.adapters.hooks import find_module

# Torch-only code: it does not change with the TensorLy backend, so it runs in the
# numpy pass of `make test` only.
pytestmark = pytest.mark.backend_independent

class Counter(nn.Module):
    """Identity that counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


class Swallower(nn.Module):
    """Runs its child inside ``except Exception``, as some generator code does."""

    def __init__(self, child):
        super().__init__()
        self.child = child

    def forward(self, x):
        try:
            return self.child(x)
        except Exception:
            return torch.zeros_like(x)


def make_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Linear(6, 3), Counter())


@pytest.fixture
def net():
    return make_net()


@pytest.fixture
def x():
    return torch.randn(5, 4, generator=torch.Generator().manual_seed(1))


def test_hook_registered_only_inside_the_block(net, x):
    trace = Trace(net, "1")
    assert forward_hooks(net) == {}
    with trace:
        assert forward_hooks(net) == {"1": 1}
        net(x)
    assert forward_hooks(net) == {}
    assert trace.calls == 1


def test_retain_output_keeps_a_clone_safe_from_inplace_ops(net, x):
    with torch.no_grad(), Trace(net, "0", retain_output=True) as cloned:
        net(x)
    with torch.no_grad(), Trace(net, "0", retain_output=True, clone=False) as view:
        net(x)
    expected = net[0](x).detach()
    # The clone keeps the negative pre-activations; the view was overwritten by ReLU(inplace).
    assert torch.equal(cloned.output, expected)
    assert (cloned.output < 0).any()
    assert torch.equal(view.output, expected.clamp(min=0))
    assert not cloned.output.requires_grad


def test_edit_output_replaces_the_output(net, x):
    with Trace(net, "2", edit_output=lambda out: out + 1.0):
        y = net(x)
    assert torch.allclose(y, net(x) + 1.0)


def test_identity_edit_is_bit_exact(net, x):
    with Trace(net, "1", edit_output=lambda out: out):
        y = net(x)
    assert torch.equal(y, net(x))


def test_edit_returning_none_raises_and_removes_the_hook(net, x):
    def forgot_return(out):
        out * 2

    with pytest.raises(TypeError, match="returned None"):
        with Trace(net, "0", edit_output=forgot_return):
            net(x)
    assert_no_hooks(net)


def test_edit_output_must_be_callable(net):
    with pytest.raises(TypeError, match="callable"):
        Trace(net, "0", edit_output=torch.zeros(3))


def test_stop_really_stops(net, x):
    fired = []
    handle = net[2].register_forward_hook(lambda *args: fired.append(True))
    try:
        after = []
        with Trace(net, "1", stop=True, retain_output=True) as trace:
            net(x)
            after.append(True)  # never reached: the forward pass raised the stop signal
    finally:
        handle.remove()
    assert fired == [] and after == [] and net[3].calls == 0
    assert trace.output.shape == (5, 6)
    assert_no_hooks(net)


def test_stop_is_not_swallowed_by_except_exception(x):
    counter = Counter()
    net = nn.Sequential(Swallower(nn.Sequential(nn.Linear(4, 4), nn.Tanh())), counter)
    with Trace(net, "0.child.0", stop=True):
        net(x)
    assert counter.calls == 0


def test_stop_on_a_layer_that_never_runs(x):
    net = nn.ModuleDict({"used": nn.Linear(4, 2), "unused": nn.Linear(4, 2)})
    with Trace(net, "unused", stop=True, retain_output=True) as trace:
        y = net["used"](x)
    assert y.shape == (5, 2) and trace.calls == 0
    with pytest.raises(RuntimeError, match="did not run"):
        _ = trace.output
    assert_no_hooks(net)


def test_hook_removed_when_the_forward_pass_raises(x):
    net = nn.Sequential(nn.Linear(4, 4), Boom())
    with pytest.raises(RuntimeError, match="boom"):
        with Trace(net, "0", retain_output=True, stop=False):
            net(x)
    assert_no_hooks(net)


def test_nested_traces_pass_the_outer_stop_through(net, x):
    with Trace(net, "2", stop=True, retain_output=True) as outer:
        with Trace(net, "0", edit_output=lambda out: out * 0):
            net(x)
        raise AssertionError("the outer stop must leave the inner block too")
    assert torch.equal(outer.output, net[2](torch.zeros(5, 6)).detach())
    assert net[3].calls == 0
    assert_no_hooks(net)


def test_module_called_twice_is_edited_every_call(x):
    shared = nn.Linear(4, 4)
    net = nn.Sequential(shared, shared)
    with torch.no_grad(), Trace(net, "0", edit_output=lambda out: out * 0, retain_output=True) as t:
        y = net(x)
    assert t.calls == 2
    assert torch.equal(t.output, torch.zeros(5, 4))
    assert torch.equal(y, torch.zeros(5, 4))


def test_unknown_module_name_lists_valid_names(net):
    with pytest.raises(ValueError, match=r"no submodule named 'main\.9'.*'0', '1', '2', '3'"):
        Trace(net, "main.9")
    blocks = nn.ModuleDict({"conv_in": nn.ReLU(), "conv_out": nn.ReLU()})
    with pytest.raises(ValueError, match="Did you mean 'conv_out'"):
        find_module(blocks, "conv_ot")


def test_trace_is_not_reentrant(net, x):
    trace = Trace(net, "0")
    with trace:
        with pytest.raises(RuntimeError, match="already active"):
            trace.__enter__()
    assert_no_hooks(net)
    with trace:  # reusable once exited
        net(x)
    assert trace.calls == 1


def test_output_needs_retain_output(net, x):
    with Trace(net, "0") as trace:
        net(x)
    with pytest.raises(AttributeError, match="retain_output=True"):
        _ = trace.output


def test_assert_no_hooks_reports_leftovers(net):
    handle = net[1].register_forward_hook(lambda *args: None)
    try:
        with pytest.raises(AssertionError, match="'1': 1"):
            assert_no_hooks(net)
    finally:
        handle.remove()
    assert_no_hooks(net)

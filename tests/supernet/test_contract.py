"""One contract every registered supernet passes (a new supernet is tested for free)."""

from __future__ import annotations

import fnmatch

import numpy as np
import pytest
import torch
from hwnas.search.spaces import create_space, list_spaces
from hwnas.search.supernet import create_supernet, list_supernets


def _space_for(pattern: str):
    name = next(n for n in list_spaces() if fnmatch.fnmatch(n, pattern) and "imagenet" not in n)
    # small NB201 skeleton: the contract is about weight sharing, not size
    return create_space(name, **({"C": 8, "N": 1} if name == "nb201" else {}))


@pytest.fixture(params=list_supernets())
def net(request):
    torch.manual_seed(0)
    net = create_supernet(_space_for(request.param))
    with torch.no_grad():  # non-trivial BN statistics so extraction is really checked
        for m in net.modules():
            if hasattr(m, "running_mean"):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_registry_covers_the_spaces():
    assert {"mbv3-*", "nb201"} <= set(list_supernets())
    with pytest.raises(LookupError, match="no supernet for space 'fbnet'"):
        create_supernet("fbnet")


def test_extracted_subnet_computes_the_same_function(net):
    rng = np.random.default_rng(0)
    x = torch.randn(3, *net.space.input_shape)
    for arch in [net.largest(), net.smallest(), net.sample(rng)]:
        sub = net.extract(arch).eval()
        ref = sub(x)
        assert ref.abs().sum() > 0
        torch.testing.assert_close(net(x, arch), ref, rtol=1e-5, atol=1e-5)


def test_largest_and_smallest_are_valid_and_differ(net):
    sp = net.space
    assert sp.validate(net.largest()) == net.largest()
    assert sp.validate(net.smallest()) == net.smallest()
    p_big = sum(p.numel() for p in net.extract(net.largest()).parameters())
    p_small = sum(p.numel() for p in net.extract(net.smallest()).parameters())
    assert p_big > p_small


def test_a_step_only_trains_the_sampled_path(net):
    net.train()
    arch = net.smallest()
    net(torch.randn(4, *net.space.input_shape), arch).sum().backward()
    grads = [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters()]
    assert any(grads) and not all(grads)  # unused ops / blocks / channels get no gradient

"""The mixed chain supernet of the one-shot methods (MGAS, BayesNAS): every block position of a
chain space holds every choice, each gated by the method's own weights.

Built only from the generic `Chain` API (`stages`, `choices`, `depths`, `block_spec`,
`build_block`, `fixed_blocks`). Per block position:
- when the stage's choices form a kernel x expansion grid of MBConv blocks (`block_spec(...)
  .params` with `kernel` and `expand`), the block is factorised: one expand conv at the largest
  expansion, the kernel candidates as gated parallel depthwise convs (a superkernel: the gated
  sum of the zero-padded candidate kernels, one shared BN, so the three parallel convs cost one;
  reconstruction, for CPU), a channel gate over the expanded width (filter units), SE and project
  of the largest block;
- otherwise (FBNet-like choice lists) every choice is a parallel candidate module
  (`build_block`) and the gated sum of their outputs is the block (no filter level);
- a block beyond the stage's minimum depth has a depth gate on its residual branch.

The gates themselves (op, channel and depth gates, switches) belong to the method that learns
them: `forward(x, gates)` takes them per block position.
"""

from __future__ import annotations

import torch
from hwnas.search.spaces.mbconv import MBConv
from torch import nn
from torch.nn import functional as F


def _grid(specs):
    """(kernels, expansions, {(k, e): choice}) when the choices are a full MBConv grid, else None."""
    try:
        pairs = [(int(p.params["kernel"]), float(p.params["expand"])) for p in specs]
    except (KeyError, TypeError, ValueError):
        return None
    if any(p.params.get("kind") != "mbconv" for p in specs):
        return None
    ks, es = sorted({k for k, _ in pairs}), sorted({e for _, e in pairs})
    index = {pe: c for c, pe in enumerate(pairs)}
    if len(index) != len(ks) * len(es) or es[-1] <= 1:
        return None
    return ks, es, index


class MixedChainBlock(nn.Module):
    """Block (s, b) with every choice; `forward(x, op_gate, ch_gate, depth_gate, live)`."""

    def __init__(self, space, s: int, b: int):
        super().__init__()
        st = space.stages[s]
        self.s, self.b = s, b
        self.optional = b >= st.min_depth
        specs = [space.block_spec(s, b == 0, c) for c in range(len(st.choices))]
        grid = _grid(specs)
        big = space.build_block(specs[grid[2][(grid[0][-1], grid[1][-1])]]) if grid else None
        if grid and isinstance(big, MBConv) and isinstance(big.expand, nn.Sequential):
            ks, es, index = grid
            self.factorised = True
            self.kernels, self.expansions, self.index = ks, es, index
            self.expand, self.se, self.project, self.residual = big.expand, big.se, big.project, big.residual
            dw = big.depthwise
            self.dw_conv, self.dw_rest = dw[0], nn.Sequential(*list(dw)[1:])
            self.mid = dw[0].out_channels
            self.mids = [space.build_block(specs[index[(ks[0], e)]]).depthwise[0].out_channels for e in es]
            weights = []
            for k in ks:
                w = space.build_block(specs[index[(k, es[-1])]]).depthwise[0].weight.detach().clone()
                weights.append(nn.Parameter(w))
            self.dw_w = nn.ParameterList(weights)
            self.n_ops = len(ks)
        else:
            self.factorised = False
            self.cands = nn.ModuleList(space.build_block(p) for p in specs)
            self.n_ops = len(specs)
            self.mid, self.mids = 0, []
            self.residual = b > 0
        if self.optional and not self.residual:
            raise ValueError(f"{space.name}: block {b} of stage {s} is optional but not residual; "
                             "a depth gate needs an identity path")

    def choice(self, op: int, width: int | None) -> int:
        """Choice index of (op, width index) in the factorised case; op in the generic one."""
        if not self.factorised:
            return op
        return self.index[(self.kernels[op], self.expansions[width])]

    def forward(self, x, op_gate, ch_gate=None, depth_gate=None, live=None):
        live = range(self.n_ops) if live is None else live
        if len(live) == 0:  # every op pruned: an absent (optional, residual) block
            if not self.residual:
                raise RuntimeError(f"block {self.b} of stage {self.s} has no live op and no identity path")
            return x
        if self.factorised:
            h = self.expand(x)
            K = self.kernels[-1]
            W = sum(op_gate[k] * F.pad(self.dw_w[k], [(K - self.kernels[k]) // 2] * 4) for k in live)
            c = self.dw_conv
            h = self.dw_rest(F.conv2d(h, W, None, c.stride, K // 2, 1, c.groups))
            if ch_gate is not None:
                h = h * ch_gate.view(1, -1, 1, 1)
            y = self.project(self.se(h))
            if not self.residual:
                return y
            return x + (y if depth_gate is None else depth_gate * y)
        y = sum(op_gate[k] * self.cands[k](x) for k in live)
        if depth_gate is None:
            return y
        return x + depth_gate * (y - x)


class MixedChainNet(nn.Module):
    """stem -> every block position's MixedChainBlock -> head; `forward(x, gates)` with
    `gates[i] = (op_gate, ch_gate, depth_gate, live)` for block position i."""

    def __init__(self, space, channels_last: bool = True):
        super().__init__()
        stem, head = space.fixed_blocks()
        self.stem, self.head = space.build_block(stem), space.build_block(head)
        self.blocks = nn.ModuleList(MixedChainBlock(space, s, b) for s, st in enumerate(space.stages)
                                    for b in range(st.max_depth))
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x, gates):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        for blk, g in zip(self.blocks, gates, strict=True):
            x = blk(x, *g)
        return self.head(x)


def build_mixed_net(space, channels_last: bool = True) -> MixedChainNet:
    """The `MixedChainNet` of a chain space (channels-last memory layout by default: faster on CPU)."""
    return MixedChainNet(space, channels_last)

"""FBNet: 22 searchable layers, 9 ops each, in HELP / HW-NAS-Bench's op index order.

Op indices: 0 k3_e1, 1 k3_e1_g2, 2 k3_e3, 3 k3_e6, 4 k5_e1, 5 k5_e1_g2, 6 k5_e3, 7 k5_e6, 8 skip.
The macro skeleton is FBNet's (stem 16, stages of widths 16/24/32/64/112/184/352 with 1/4/4/4/4/4/1
layers, head 1984), at CIFAR-100 resolution (32x32, 100 classes) as HELP's tables were measured.
Reconstruction: strides follow HW-NAS-Bench's CIFAR adaptation (stem and the first two stages at
stride 1), and `skip` on a layer that changes shape is a 1x1 conv + BN projection.
The arch string is the 22 op names joined by '|'; `from_str` also takes HELP's `op_idx_list`
("7 8 1 ..."), so HELP's FBNet tables import as they are.
"""

from __future__ import annotations

import re

from .base import ArchError, BlockSpec
from .chain import ChainSpace, StageSpec
from .registry import register_space

OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
#: (width, number of layers, stride of the first layer)
MACRO = ((16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
_OP_RE = re.compile(r"^k(\d)_e(\d)(_g(\d))?$")


def parse_op(name: str) -> tuple[int, int, int] | None:
    """'k5_e1_g2' -> (kernel 5, expansion 1, groups 2); 'skip' -> None."""
    if name == "skip":
        return None
    m = _OP_RE.match(name)
    if not m:
        raise ArchError(f"FBNet op {name!r} unknown; expected one of {', '.join(OPS)}")
    return int(m.group(1)), int(m.group(2)), int(m.group(4) or 1)


class FBNetSpace(ChainSpace):
    stage_sep = "|"
    block_sep = "-"

    def __init__(self, input_shape=(3, 32, 32), num_classes: int = 100, head_channels: int = 1984):
        self.name = "fbnet"
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.stem_channels = 16
        self.stem_stride = 1
        self.head_channels = head_channels
        layers = []
        for width, n, stride in MACRO:
            for i in range(n):
                layers.append(StageSpec(width=width, stride=stride if i == 0 else 1,
                                        min_depth=1, max_depth=1, choices=OPS))
        self.stages = tuple(layers)

    def from_str(self, s: str):
        if isinstance(s, str) and re.fullmatch(r"\s*\d+(\s+\d+)*\s*", s):
            idx = [int(t) for t in s.split()]
            if len(idx) != len(self.stages):
                raise ArchError(f"fbnet op index list needs {len(self.stages)} entries, got {len(idx)}")
            return self.validate(tuple((i,) for i in idx))
        return super().from_str(s)

    def to_op_indices(self, arch) -> str:
        """HELP's `op_idx_list` form: '7 8 1 ...'."""
        return " ".join(str(blocks[0]) for blocks in self.validate(arch))

    def block_spec(self, stage: int, first: bool, choice: int) -> BlockSpec:
        st = self.stages[stage]
        c_in, r_in, _ = self.stage_io()[stage]
        op = OPS[choice]
        key = f"fbnet:{op}:i{c_in}o{st.width}s{st.stride}:{r_in}x{r_in}"
        return BlockSpec(key, (c_in, r_in, r_in), {
            "kind": "op", "op": op, "c_in": c_in, "c_out": st.width, "stride": st.stride,
        })

    def fixed_blocks(self) -> list[BlockSpec]:
        c, r = self.input_shape[0], self.input_shape[1]
        c_last = self.stages[-1].width
        r_last = self.stage_io()[-1][2]
        return [
            BlockSpec(f"stem:i{c}o16s1:{r}x{r}", (c, r, r), {"kind": "stem", "c_in": c}),
            BlockSpec(f"head:i{c_last}e{self.head_channels}o{self.num_classes}:{r_last}x{r_last}",
                      (c_last, r_last, r_last), {"kind": "head", "c_in": c_last}),
        ]

    def build_block(self, block: BlockSpec):
        from . import fbnet_net as net

        p = block.params
        if p["kind"] == "op":
            return net.make_op(p["op"], p["c_in"], p["c_out"], p["stride"])
        if p["kind"] == "stem":
            return net.ConvBNReLU(p["c_in"], self.stem_channels, 3, self.stem_stride)
        if p["kind"] == "head":
            return net.Head(p["c_in"], self.head_channels, self.num_classes)
        raise ArchError(f"fbnet has no block kind {p['kind']!r} (key {block.key})")


@register_space("fbnet")
def fbnet(**kw) -> FBNetSpace:
    return FBNetSpace(**kw)

"""MobileNetV3 / Once-for-All style chain spaces of MBConv blocks.

Per stage: depth {2,3,4}; per block: kernel {3,5,7} x expansion {3,4,6}. Stage widths, strides,
squeeze-excite and activations are fixed by the preset, as in OFA's MobileNetV3 space.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .base import ArchError, BlockSpec
from .chain import ChainSpace, StageSpec
from .registry import register_space

KERNELS = (3, 5, 7)
EXPANSIONS = (3, 4, 6)
CHOICES = tuple(f"k{k}e{e}" for k, e in itertools.product(KERNELS, EXPANSIONS))


def parse_choice(name: str) -> tuple[int, int]:
    """'k5e4' -> (5, 4)."""
    try:
        k, e = name[1:].split("e")
        return int(k), int(e)
    except ValueError:
        raise ArchError(f"MBConv choice {name!r} is not of the form 'k<kernel>e<expansion>'") from None


@dataclass(frozen=True)
class MBV3Preset:
    input_shape: tuple[int, int, int]
    num_classes: int
    stem_channels: int
    stem_stride: int
    stem_act: str
    first_block: bool  # OFA's fixed MBConv(k3, e1) right after the stem
    widths: tuple[int, ...]
    strides: tuple[int, ...]
    se: tuple[bool, ...]
    acts: tuple[str, ...]
    head_expand: int
    head_feature: int | None
    dropout: float = 0.0
    depths: tuple[int, ...] = (2, 3, 4)
    kernels: tuple[int, ...] = KERNELS
    expansions: tuple[int, ...] = EXPANSIONS

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(f"k{k}e{e}" for k, e in itertools.product(self.kernels, self.expansions))


PRESETS = {
    # 28x28 grey images, small enough to train on 2 CPU cores. Expansion 1 and depth 1 were
    # added (was e3/4/6, depth 2-4): under the stand-alone protocol the old range held every
    # subnet within ~1.5 pp, so a latency bound had nothing to trade; MACs now span 0.3-8.2 M.
    "mbv3-fmnist": MBV3Preset(
        input_shape=(1, 28, 28), num_classes=10, stem_channels=16, stem_stride=2, stem_act="hswish",
        first_block=False, widths=(16, 24, 40), strides=(1, 2, 2), se=(False, True, True),
        acts=("relu", "hswish", "hswish"), head_expand=256, head_feature=None, dropout=0.1,
        depths=(1, 2, 3), expansions=(1, 3, 6),
    ),
    # OFA MobileNetV3 (HardCoRe-NAS / BINAS sized): 224x224 RGB, 1000 classes.
    "mbv3-imagenet": MBV3Preset(
        input_shape=(3, 224, 224), num_classes=1000, stem_channels=16, stem_stride=2, stem_act="hswish",
        first_block=True, widths=(24, 40, 80, 112, 160), strides=(2, 2, 2, 1, 2),
        se=(False, True, False, True, True), acts=("relu", "relu", "hswish", "hswish", "hswish"),
        head_expand=960, head_feature=1280, dropout=0.1,
    ),
}


class MBV3Space(ChainSpace):
    def __init__(self, preset: str = "mbv3-fmnist", **overrides):
        if preset not in PRESETS:
            raise KeyError(f"unknown mbv3 preset {preset!r}; known: {', '.join(PRESETS)}")
        cfg = PRESETS[preset]
        if overrides:
            cfg = MBV3Preset(**{**cfg.__dict__, **overrides})
        self.name = preset
        self.cfg = cfg
        self.input_shape = cfg.input_shape
        self.num_classes = cfg.num_classes
        self.stem_channels = cfg.stem_channels
        self.stem_stride = cfg.stem_stride
        self.stages = tuple(
            StageSpec(width=w, stride=s, min_depth=min(cfg.depths), max_depth=max(cfg.depths),
                      choices=cfg.choices, se=se, act=act)
            for w, s, se, act in zip(cfg.widths, cfg.strides, cfg.se, cfg.acts, strict=True)
        )

    def block_spec(self, stage: int, first: bool, choice: int) -> BlockSpec:
        st = self.stages[stage]
        c_in, r_in, r_out = self.stage_io()[stage]
        if not first:
            c_in, r_in = st.width, r_out
        stride = st.stride if first else 1
        k, e = parse_choice(st.choices[choice])
        key = f"mbconv:k{k}e{e}:i{c_in}o{st.width}s{stride}:{st.act}:se{int(st.se)}:{r_in}x{r_in}"
        return BlockSpec(key, (c_in, r_in, r_in), {
            "kind": "mbconv", "c_in": c_in, "c_out": st.width, "kernel": k, "expand": e,
            "stride": stride, "se": st.se, "act": st.act,
        })

    def fixed_blocks(self) -> list[BlockSpec]:
        cfg = self.cfg
        c, r = self.input_shape[0], self.input_shape[1]
        out = [BlockSpec(f"stem:i{c}o{cfg.stem_channels}s{cfg.stem_stride}:{r}x{r}", (c, r, r), {
            "kind": "stem", "c_in": c, "c_out": cfg.stem_channels, "stride": cfg.stem_stride,
            "act": cfg.stem_act, "first_block": cfg.first_block,
        })]
        r_last = self.stage_io()[-1][2]
        c_last = self.stages[-1].width
        out.append(BlockSpec(f"head:i{c_last}e{cfg.head_expand}f{cfg.head_feature}o{self.num_classes}:{r_last}x{r_last}",
                             (c_last, r_last, r_last), {"kind": "head", "c_in": c_last}))
        return out

    def build_block(self, block: BlockSpec):
        from . import mbconv as m

        p, cfg = block.params, self.cfg
        if p["kind"] == "mbconv":
            return m.MBConv(p["c_in"], p["c_out"], p["kernel"], p["expand"], p["stride"], p["se"], p["act"])
        if p["kind"] == "stem":
            import torch.nn as nn

            layers = [m.ConvBNAct(p["c_in"], p["c_out"], 3, p["stride"], act=p["act"])]
            if p["first_block"]:
                layers.append(m.MBConv(p["c_out"], p["c_out"], 3, 1, 1, False, "relu"))
            return nn.Sequential(*layers)
        if p["kind"] == "head":
            return m.ClassifierHead(p["c_in"], cfg.head_expand, cfg.head_feature, self.num_classes,
                                    dropout=cfg.dropout)
        raise ArchError(f"{self.name} has no block kind {p['kind']!r} (key {block.key})")


@register_space("mbv3-fmnist")
def mbv3_fmnist(**kw) -> MBV3Space:
    return MBV3Space("mbv3-fmnist", **kw)


@register_space("mbv3-imagenet")
def mbv3_imagenet(**kw) -> MBV3Space:
    return MBV3Space("mbv3-imagenet", **kw)

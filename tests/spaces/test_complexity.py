from __future__ import annotations

from hwnas.search.spaces import create_space
from hwnas.search.spaces.complexity import block_complexity


def _spec(space, op: str, width: int):
    return next(s for s in space.all_blocks() if s.params.get("op") == op and s.params["c_in"] == width
                and s.params["c_out"] == width and s.params["stride"] == 1)


def test_fbnet_block_macs_match_the_mbconv_formula():
    sp = create_space("fbnet")
    spec = _spec(sp, "k3_e6", 24)  # 24 -> 144 (1x1) -> 3x3 depthwise -> 24 (1x1), at 32x32
    c, r, mid = 24, spec.input_shape[1], 24 * 6
    want = r * r * (c * mid + mid * 9 + mid * c)
    got = block_complexity(sp, spec)
    assert got.macs == want
    assert got.layers == 3 and got.activations == r * r * (mid + mid + c)


def test_identity_skip_has_no_work_and_projection_skip_has_some():
    sp = create_space("fbnet")
    assert block_complexity(sp, _spec(sp, "skip", 24)).macs == 0
    proj = next(s for s in sp.all_blocks() if s.params.get("op") == "skip" and s.params["c_in"] != s.params["c_out"])
    got = block_complexity(sp, proj)
    assert got.layers == 1 and got.macs > 0

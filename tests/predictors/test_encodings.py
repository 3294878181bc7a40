from __future__ import annotations

import numpy as np
import pytest
from hwnas.core.capabilities import FeatureEncodable
from hwnas.predictors.encodings import encode
from hwnas.search.spaces import create_space
from hwnas.search.spaces.encoders import nb201_representatives


def test_isomorphic_and_dead_edge_cells_share_one_struct_encoding():
    sp = create_space("nb201")
    reps = nb201_representatives(type(sp))
    assert len(set(reps.values())) == 5390  # the number of distinct NB201 cells
    # edge 3 (3<-0) is dead-free, but node 1 only feeds a dead end when edges 2 and 4 are none:
    a = sp.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    b = sp.from_str("|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    ea, eb = encode(sp, [a, b], "struct")
    np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(*encode(sp, [a, b], "onehot"))


def test_degenerate_cells_are_flagged():
    sp = create_space("nb201")
    dead = sp.from_str("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert sp.is_degenerate(dead)
    assert encode(sp, [dead], "struct")[0, -1] == 1.0


def test_ops_encoding_counts_raw_and_live_ops():
    sp = create_space("nb201")
    a = sp.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    x = encode(sp, [a], "ops")[0]
    np.testing.assert_array_equal(x[:5], [4, 1, 0, 1, 0])  # all edges
    np.testing.assert_array_equal(x[5:], [0, 1, 0, 0, 0])  # live edges only


def test_chain_struct_encoding_has_fixed_length():
    sp = create_space("mbv3-fmnist")
    X = encode(sp, sp.sample_many(20, np.random.default_rng(0)), "struct")
    assert X.shape[0] == 20 and X.shape[1] > len(sp.encode(sp.sample(np.random.default_rng(1))))


def test_chain_ops_encoding_shares_a_key_between_layers_of_one_shape():
    sp = create_space("fbnet")
    base = [0] * 22
    a, b = list(base), list(base)
    a[2], b[3] = 7, 7  # layers 2 and 3 have the same shape (24 -> 24, stride 1): same block key
    x = encode(sp, [sp.validate(tuple((c,) for c in v)) for v in (a, b)], "ops")
    np.testing.assert_array_equal(x[0], x[1])


def test_nb201_cost_encoding_counts_the_adds_each_node_needs():
    sp = create_space("nb201")
    all_conv = encode(sp, [(3,) * 6], "cost")[0]
    assert list(all_conv[:10]) == [0, 0, 0, 6, 0, 0, 0, 0, 6, 0]  # the `ops` part comes first
    assert list(all_conv[-2:]) == [3, 3]  # node 2 adds 2 inputs, node 3 adds 3: 1 + 2 adds
    # edge 1->2 `none`, and node 1 feeds nothing live: node 2 has one input, no add
    cut = encode(sp, [(3, 3, 0, 3, 0, 3)], "cost")[0]
    assert list(cut[-2:]) == [1, 1]


def test_chain_cost_encoding_sums_block_macs_per_stage_width():
    from hwnas.search.spaces.complexity import block_complexity

    sp = create_space("fbnet")
    small, big = sp.smallest(), tuple((7,) for _ in sp.stages)  # all skip-ish vs all k5_e6
    X = encode(sp, [small, big], "cost")
    n_ops = encode(sp, [small], "ops").shape[1]
    total_macs = X[:, -3]  # last group row = whole network: macs, activations, layers
    assert X.shape[1] == n_ops + 3 * (len({st.width for st in sp.stages}) + 1)
    assert total_macs[1] > total_macs[0]
    scale = max(block_complexity(sp, s).macs for s in sp.all_blocks())
    want = sum(block_complexity(sp, s).macs for s in sp.blocks(big)) / scale
    np.testing.assert_allclose(total_macs[1], want, rtol=1e-5)


# ---- graph features (GRAF style) ---------------------------------------------------------
def test_every_builtin_space_owns_its_encodings():
    for name in ("nb201", "fbnet", "mbv3-fmnist"):
        sp = create_space(name)
        assert isinstance(sp, FeatureEncodable) and sp.encodings[0] == "onehot" and "graf" in sp.encodings
        with pytest.raises(ValueError, match="expected one of onehot"):
            sp.encode_as([sp.sample(np.random.default_rng(0))], "nope")


def test_nb201_graf_reads_live_paths_and_degrees():
    sp = create_space("nb201")
    # conv3 on 1<-0 feeds a dead end (edges 1->2, 1->3 none), skip on 3<-0: one live path, of length 1
    a = sp.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    x = encode(sp, [a], "graf")[0]
    np.testing.assert_array_equal(x[:4], [1, 0, 0, 0])  # live op counts: skip, conv1, conv3, pool
    np.testing.assert_array_equal(x[4:8], [1, 0, 1, 0])  # raw op counts
    assert x[8] == 0 and x[9] == 1  # not degenerate, one live path
    conv = encode(sp, [(3,) * 6], "graf")[0]
    # subset {conv3} (the third single-op subset): paths of length 1..3, 4 of them, output in-degree 3,
    # input out-degree 3, mean in-degree of nodes 1, 2 = (1 + 2) / 2, mean out-degree (2 + 1) / 2
    np.testing.assert_array_equal(conv[14 + 7 * 2:14 + 7 * 3], [1, 3, 4, 3, 3, 1.5, 1.5])
    assert encode(sp, [(0,) * 6], "graf")[0][8] == 1.0  # degenerate flag


def test_nb201_graf_is_equal_for_isomorphic_cells():
    sp = create_space("nb201")
    a = (2, 3, 0, 1, 4, 3)  # edge 1->2 none: nodes 1 and 2 can swap
    b = (3, 2, 0, 1, 3, 4)
    assert sp.canonical(a) == sp.canonical(b)
    np.testing.assert_array_equal(*encode(sp, [a, b], "graf"))


@pytest.mark.parametrize("name", ["fbnet", "mbv3-fmnist"])
def test_chain_graf_counts_depth_kernels_and_macs(name):
    sp = create_space(name)
    small, archs = sp.smallest(), sp.sample_many(5, np.random.default_rng(0))
    X = encode(sp, [small, *archs], "graf")
    assert X.shape[0] == 6 and np.isfinite(X).all()
    real = sum(1 for blocks, st in zip(archs[0], sp.stages, strict=True) for c in blocks if st.choices[c] != "skip")
    assert X[1, 0] == real  # whole-network depth counts non-skip blocks
    assert X[1, 2] == max(int(st.choices[c][1]) for blocks, st in zip(archs[0], sp.stages, strict=True)
                          for c in blocks if st.choices[c] != "skip")  # max kernel
    # total MACs (in units of the largest block) are the `cost` encoding's whole-network MACs
    np.testing.assert_allclose(X[:, 7], encode(sp, [small, *archs], "cost")[:, -3], rtol=1e-5)

from __future__ import annotations

import numpy as np

from predictors.encodings import encode, nb201_representatives
from search.spaces import create_space


def test_isomorphic_and_dead_edge_cells_share_one_struct_encoding():
    sp = create_space("nb201")
    reps = nb201_representatives()
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
    from search.spaces.complexity import block_complexity

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

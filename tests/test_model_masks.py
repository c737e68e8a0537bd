import torch

from avatar_forcing.model.config import model_preset
from avatar_forcing.model.masks import cross_attention_mask, self_attention_mask


def test_frame_lookahead_entries():
    cfg = model_preset("tiny", block_size=3, lookahead=2, window=9, context=1)
    f = torch.arange(7)
    mask = self_attention_mask(f, f, cfg)
    for i in range(7):
        for j in range(7):
            assert mask[i, j] == (j <= i + 2), (i, j)


def test_block_causal_entries():
    cfg = model_preset("tiny", block_size=3, lookahead=1, window=9, context=1, mask="block_causal")
    f = torch.arange(9)
    mask = self_attention_mask(f, f, cfg)
    expected = [
        "1111" + "00000",  # frames 0..2 see block 0 and 1 frame of block 1
        "1111" + "00000",
        "1111" + "00000",
        "1111111" + "00",
        "1111111" + "00",
        "1111111" + "00",
        "111111111",
        "111111111",
        "111111111",
    ]
    assert mask.int().tolist() == [[int(ch) for ch in row] for row in expected]


def test_block_causal_is_shift_invariant_by_blocks():
    cfg = model_preset("tiny", block_size=5, lookahead=2, window=10, context=2, mask="block_causal")
    f = torch.arange(12)
    assert torch.equal(self_attention_mask(f, f, cfg), self_attention_mask(f + 1000, f + 1000, cfg))


def test_lookahead_in_block_stops_at_the_blocks_end_in_self_and_cross_attention():
    cfg = model_preset("tiny", block_size=3, lookahead=2, cross_window=2, window=9, context=1,
                       mask="lookahead_in_block")
    f = torch.arange(9)
    own_block_end = (f // 3 + 1) * 3
    for name, mask in (("self", self_attention_mask(f, f, cfg)), ("cross", cross_attention_mask(f, f, cfg))):
        for i in range(9):
            for j in range(9):
                reach = j <= i + 2 if name == "self" else abs(j - i) <= 2
                assert mask[i, j] == (reach and j < own_block_end[i]), (name, i, j)
    # what streaming has: a block's last frame sees nothing of the next block, in training too
    assert not self_attention_mask(f, f, cfg)[2, 3] and not cross_attention_mask(f, f, cfg)[2, 3]
    motion_only = model_preset("tiny", block_size=3, lookahead=2, cross_window=2, window=9, context=1,
                               mask="motion_lookahead_in_block")
    assert torch.equal(self_attention_mask(f, f, motion_only), self_attention_mask(f, f, cfg))
    assert torch.equal(cross_attention_mask(f, f, motion_only), (f[None, :] - f[:, None]).abs() <= 2)


def test_cross_window_entries():
    cfg = model_preset("tiny", cross_window=2)
    q, k = torch.arange(3, 8), torch.arange(0, 10)
    mask = cross_attention_mask(q, k, cfg)
    for a, i in enumerate(q.tolist()):
        for b, j in enumerate(k.tolist()):
            assert mask[a, b] == (abs(i - j) <= 2)


def test_authors_mask_is_frame_lookahead():
    from pathlib import Path

    from safetensors.torch import load_file

    sd = load_file(Path(__file__).parent / "data/conformance/ft_small_state_dict.safetensors")
    f = torch.arange(50)
    cfg = model_preset("conformance_small")
    assert torch.equal(
        sd["flow_transformer.block_bidir_causal_lookahead_mask"], self_attention_mask(f, f, cfg)
    )
    assert torch.equal(sd["flow_transformer.alignment_mask"], cross_attention_mask(f, f, cfg))

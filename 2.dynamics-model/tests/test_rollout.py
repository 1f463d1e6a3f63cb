"""The shared algorithms, on fake networks: MaskGIT decoding and the sliding-window rollout."""

import pytest
import torch
from dynamics_model.maskgit_decode import mask_schedule, maskgit_decode
from dynamics_model.rollout import rollout
from dynamics_model.sampling import sample_from_logits

K, N, MASK = 5, 12, 5


def test_maskgit_decode_fixes_tokens_on_the_cosine_schedule_and_never_changes_them():
    seen = []

    def logits_fn(partial):  # (B, N) -> (B, N, K): records what the network was shown
        seen.append(partial.clone())
        return torch.randn(*partial.shape, K, generator=noise)

    noise = torch.Generator().manual_seed(0)
    steps = 4
    decoded = maskgit_decode(
        logits_fn, 3, N, MASK, steps,
        sampler=lambda logits: sample_from_logits(logits, 1.0, 1.0, torch.Generator()),
    )  # fmt: skip
    assert decoded.ids.shape == (3, N) and (decoded.ids < K).all()
    assert torch.equal(seen[0], torch.full((3, N), MASK))  # starts all masked
    for i in range(steps):
        fixed = (decoded.partial[:, i] != MASK).sum(1)  # (B,)
        expected = N - round(N * mask_schedule((i + 1) / steps)) if i < steps - 1 else N
        assert (fixed == expected).all()
        if i:  # a token fixed at an earlier step keeps its value
            before = decoded.partial[:, i - 1] != MASK
            assert torch.equal(decoded.partial[:, i][before], decoded.partial[:, i - 1][before])
            assert torch.equal(seen[i], decoded.partial[:, i - 1])  # fed back as input
    assert torch.equal(decoded.partial[:, -1], decoded.ids)
    assert set(decoded.fixed_at_step.unique().tolist()) <= set(range(steps))


def test_maskgit_decode_fixes_the_most_confident_tokens_first():
    # the network is sure of the first half of the positions, unsure of the rest
    sure = torch.zeros(N, K)
    sure[: N // 2, 1] = 20.0  # a peaked distribution on token 1

    def logits_fn(partial):
        return sure.expand(partial.shape[0], N, K)

    decoded = maskgit_decode(logits_fn, 2, N, MASK, 4, sampler=lambda logits: logits.argmax(-1))
    # steps fix 1, 3, 3, 5 tokens: the 6 sure ones take steps 0-2, the unsure ones steps 2-3
    last_sure = decoded.fixed_at_step[:, : N // 2].max(1).values  # (B,)
    first_unsure = decoded.fixed_at_step[:, N // 2 :].min(1).values
    assert (last_sure <= first_unsure).all() and (decoded.fixed_at_step[:, N // 2 :] >= 2).all()
    with pytest.raises(ValueError, match="steps"):
        maskgit_decode(logits_fn, 2, N, MASK, 0, sampler=lambda logits: logits.argmax(-1))


def test_rollout_slides_its_window_and_pairs_each_frame_with_its_action():
    calls = []

    def predict_next(context, actions):  # (B, T', h, w), (B, T') -> (B, h, w)
        calls.append((context[0, :, 0, 0].tolist(), actions[0].tolist()))
        return context[:, -1] + 1  # frame value = its index in the clip

    context = torch.arange(2).view(1, 2, 1, 1).expand(2, 2, 1, 1)  # frames 0, 1
    actions = torch.arange(10, 16).view(1, 6).expand(2, 6)  # a_t = 10 + t
    frames = rollout(predict_next, context, actions, horizon=4, window=3)
    assert frames[0, :, 0, 0].tolist() == [2, 3, 4, 5]
    # frame t + 1 is made from the last <= 3 frames and the actions taken at them
    assert calls == [
        ([0, 1], [10, 11]),
        ([0, 1, 2], [10, 11, 12]),
        ([1, 2, 3], [11, 12, 13]),
        ([2, 3, 4], [12, 13, 14]),
    ]
    with pytest.raises(ValueError, match="needs actions"):
        rollout(predict_next, context, actions[:, :4], horizon=4, window=3)

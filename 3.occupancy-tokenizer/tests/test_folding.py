"""Height folding is a pure reshape with a known channel order, its inverse undoes it, bad
grids are named, and the output head is the input embedding read backwards."""

import pytest
import torch
from occupancy_tokenizer.folding import HeightFolding, check_grid, fold_height, unfold_height
from occupancy_tokenizer.tied_head import TiedHead


def test_fold_puts_level_z_channel_c_at_z_times_C_plus_c():
    e = torch.randn(2, 5, 6, 4, 3)  # (B, X, Y, Z, C)
    image = fold_height(e)
    assert image.shape == (2, 4 * 3, 5, 6)
    b, x, y, z, c = 1, 3, 2, 2, 1
    assert image[b, z * 3 + c, x, y] == e[b, x, y, z, c]


def test_fold_and_unfold_are_inverse():
    e = torch.randn(2, 5, 6, 4, 3)
    assert torch.equal(unfold_height(fold_height(e), 4), e)
    image = torch.randn(2, 12, 5, 6)
    assert torch.equal(fold_height(unfold_height(image, 4)), image)


def test_height_folding_embeds_each_voxel_by_its_class():
    fold = HeightFolding(num_classes=18, embed_dim=3, levels=4)
    grid = torch.randint(0, 18, (2, 5, 6, 4), dtype=torch.uint8)
    e = unfold_height(fold(grid), 4)  # (B, X, Y, Z, C)
    assert torch.equal(e, fold.embedding.weight[grid.long()])
    assert torch.equal(fold(grid), fold(grid.long()))  # uint8 and int64 alike


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (torch.zeros(5, 6, 4, dtype=torch.long), r"\(B, X, Y, Z\)"),
        (torch.full((1, 5, 6, 4), 18, dtype=torch.long), r"\[0, 18\).*18"),
        (torch.full((1, 5, 6, 4), -1, dtype=torch.long), r"\[0, 18\).*-1"),
        (torch.zeros(1, 5, 6, 4), "float32"),
        (torch.zeros(1, 5, 6, 4, dtype=torch.bool), "bool"),
    ],
    ids=["no batch axis", "id 18", "negative id", "float grid", "bool grid"],
)
def test_bad_grids_are_named(grid, message):
    with pytest.raises(ValueError, match=message):
        check_grid(grid)
    with pytest.raises(ValueError, match=message):
        HeightFolding(levels=4)(grid)


def test_wrong_number_of_levels_is_named():
    with pytest.raises(ValueError, match="Z=8"):
        HeightFolding(levels=8)(torch.zeros(1, 5, 6, 4, dtype=torch.long))


def test_tied_head_equals_a_linear_map_with_the_embedding_weights():
    torch.manual_seed(0)
    fold = HeightFolding(num_classes=18, embed_dim=3, levels=4)
    head = TiedHead(fold.embedding, levels=4)
    image = torch.randn(2, 12, 5, 6)  # (B, Z*C, X, Y)
    linear = torch.nn.Linear(3, 18, bias=False)
    with torch.no_grad():
        linear.weight.copy_(fold.embedding.weight)  # (Q, C): logits = W d
    expected = linear(unfold_height(image, 4))  # (B, X, Y, Z, Q)
    torch.testing.assert_close(head(image), expected)
    # every level is scored by the same table: level z's logits depend only on its C channels
    z = 2
    torch.testing.assert_close(
        head(image)[:, :, :, z], linear(image[:, z * 3 : (z + 1) * 3].permute(0, 2, 3, 1))
    )


def test_tied_head_shares_the_parameter_with_the_input():
    fold = HeightFolding(num_classes=18, embed_dim=3, levels=4)
    head = TiedHead(fold.embedding, levels=4)
    assert head.embedding.weight is fold.embedding.weight
    params = list(torch.nn.ModuleList([fold, head]).parameters())
    assert len(params) == 1  # no parameter of its own
    grid = torch.randint(0, 18, (1, 5, 6, 4))
    head(fold(grid)).sum().backward()  # the gradient reaches W from both ends
    assert fold.embedding.weight.grad.abs().sum() > 0

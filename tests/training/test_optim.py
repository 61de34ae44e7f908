import torch

from mmt_tune.models.blocks import Linear
from mmt_tune.training.optim import MaskedAdamW


def test_masked_adamw_equals_torch_adamw_per_slice_with_skipped_steps():
    torch.manual_seed(0)
    packed = Linear(3, 4, 5)
    alone = [Linear(1, 4, 5) for _ in range(3)]
    with torch.no_grad():
        for i, model in enumerate(alone):
            model.weight.copy_(packed.weight[i : i + 1])
            model.bias.copy_(packed.bias[i : i + 1])
    optimizer = MaskedAdamW(packed, 3, lr=1e-2, weight_decay=0.1)
    reference = [torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1) for m in alone]
    pattern = [[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0]] * 5
    for active in pattern:
        x = torch.randn(3, 8, 4)
        optimizer.zero_grad()
        packed(x).pow(2).sum().backward()
        optimizer.step([bool(a) for a in active])
        for i, (model, opt) in enumerate(zip(alone, reference, strict=True)):
            if active[i]:
                opt.zero_grad()
                model(x[i : i + 1]).pow(2).sum().backward()
                opt.step()
    for i, model in enumerate(alone):
        torch.testing.assert_close(packed.weight[i], model.weight[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(packed.bias[i], model.bias[0], rtol=1e-5, atol=1e-6)

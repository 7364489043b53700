"""Every classification CNN of torchvision, and the common CNN families of timm, import exactly.

For each model, against sources independent of ours:
  - params: the model's own `sum(p.numel())`;
  - MACs: torch's FlopCounterMode on the model (conv and linear FLOPs, a multiply-add counted as 2);
  - the written spec: built, it loads the model's state_dict with strict=True and gives the model's
    outputs (eval mode, batch-norm running statistics randomised so that a wrong mapping shows);
  - and the written spec expands to the import op for op (written_spec checks it).

The counts are exact at any input size, so the models run at 64x64 where they can (sizes below),
without gradients, each built once.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import inception_analyzer as ia  # noqa: E402
from inception_analyzer.graph import build_graph  # noqa: E402
from inception_analyzer.importer import import_module, written_spec  # noqa: E402
from inception_analyzer.spec import load_spec_text  # noqa: E402

# torchvision's GoogLeNet and Inception-v3 announce a change of their default initialisation
pytestmark = pytest.mark.filterwarnings("ignore:The default weight initialization:FutureWarning")

TRANSFORMERS = ("vit_", "swin_", "maxvit_")
# timm: one or two models of each common CNN family
TIMM_MODELS = ["resnet50", "resnet50d", "resnext50_32x4d", "efficientnet_b0", "mobilenetv3_large_100",
               "regnetx_002", "regnety_002", "xception41", "legacy_xception", "inception_v3", "inception_v4",
               "inception_resnet_v2", "ese_vovnet19b_dw", "vovnet39a", "densenet121", "dla34", "res2net50_26w_4s",
               "vgg16_bn", "tf_efficientnet_b0", "hrnet_w18_small", "ghostnetv2_100", "nasnetalarge"]
# the rest at 64x64: torchvision's inception_v3 traces its auxiliary head (training mode) on a
# 17x17 grid; timm's Inceptions (no padding in the stem) reduce 64x64 to nothing
TORCHVISION_SIZES = {"inception_v3": 299}
TIMM_SIZES = {"inception_v3": 96, "inception_v4": 96, "inception_resnet_v2": 96, "nasnetalarge": 96}


def _torchvision_cnns() -> list[str]:
    """torchvision's classification models minus its transformers, as torchvision lists them."""
    try:
        from inception_analyzer.torchvision_compat import load_torchvision
    except ImportError:
        return []
    torchvision = load_torchvision().module
    if torchvision is None:
        return []
    return [name for name in torchvision.models.list_models(module=torchvision.models)
            if not name.startswith(TRANSFORMERS)]


TORCHVISION_CNNS = _torchvision_cnns()


def conv_and_linear_macs(model, image) -> int:
    """torch's own count: FlopCounterMode's FLOPs of a forward pass (conv, linear: 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(image)
    return counter.get_total_flops() // 2


def randomise_batch_norm(model) -> None:
    for layer in model.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) and layer.running_mean is not None:
            layer.running_mean.uniform_(-0.5, 0.5)
            layer.running_var.uniform_(0.5, 2.0)


def check_exact(model, name: str, size: int) -> None:
    torch.manual_seed(0)
    model = model.eval()
    randomise_batch_norm(model)
    imported = import_module(model, (3, size, size), name=name)
    totals = ia.analyze(imported.graph).totals
    assert totals.status == "complete"
    assert totals.params == sum(p.numel() for p in model.parameters())
    image = torch.randn(2, 3, size, size)
    assert totals.macs == conv_and_linear_macs(model, image[:1])
    text = written_spec(imported)
    built = ia.build_model(build_graph(load_spec_text(text, f"{name}.yaml"))).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(built(image), model(image), rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", TORCHVISION_CNNS or ["(torchvision not importable)"])
def test_every_torchvision_cnn_imports_exactly(torchvision, name):
    model = torchvision.models.get_model(name, weights=None)
    check_exact(model, name, TORCHVISION_SIZES.get(name, 64))


def test_the_list_is_torchvisions_whole_cnn_list(torchvision):
    """68 models in torchvision 0.28: the list above is what torchvision lists, nothing left out."""
    listed = torchvision.models.list_models(module=torchvision.models)
    assert set(TORCHVISION_CNNS) == {n for n in listed if not n.startswith(TRANSFORMERS)}
    assert len(TORCHVISION_CNNS) >= 68


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_timm_cnn_families_import_exactly(timm, name):
    model = timm.create_model(name, pretrained=False)
    check_exact(model, f"timm_{name}", TIMM_SIZES.get(name, 64))

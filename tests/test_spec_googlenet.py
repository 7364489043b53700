"""specs/googlenet.yaml is torchvision's GoogLeNet, module for module.

Independent sources the figures are checked against:
  - torchvision's published figures for googlenet IMAGENET1K_V1 (num_params 6,624,904 and
    "GFLOPS" 1.50 in the model docs; 1 multiply-add counted as 1 op);
  - the torchvision model itself, instantiated in the test (skipped when torchvision is absent):
    its parameter count with the aux heads (13,004,888), every named module's parameters, the
    output shape of every module in a forward pass, and a multiply-add count taken with forward
    hooks on its real Conv2d / Linear modules.
"""
from __future__ import annotations

import math

import pytest

import inception_analyzer as ia
from conftest import spec_path

SPEC = spec_path("googlenet")

# torchvision docs / GoogLeNet_Weights.IMAGENET1K_V1.meta: "num_params": 6624904 (aux off, as the
# weights are loaded) and 1.50 GFLOPS (multiply-adds).
TORCHVISION_PARAMS = 6_624_904
TORCHVISION_PARAMS_WITH_AUX = 13_004_888
TORCHVISION_GMACS = 1.50

WEIGHTED = ("conv", "bn", "linear")


def report(aux_logits: bool):
    return ia.analyze(SPEC, {"aux_logits": aux_logits})


def weighted_layers(aux_logits: bool) -> dict[str, int]:
    return {layer.path: layer.params for layer in report(aux_logits).layers if layer.op in WEIGHTED}


def torchvision_model(torchvision, aux_logits: bool):
    model = torchvision.models.googlenet(weights=None, aux_logits=aux_logits, init_weights=False)
    return model


def torchvision_weighted(torch, model) -> dict[str, int]:
    kinds = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)
    return {name: sum(p.numel() for p in module.parameters(recurse=False))
            for name, module in model.named_modules() if isinstance(module, kinds)}


def trace(torch, model, training: bool):
    """Output shape [C, H, W] (or [N]) of every leaf module, and hook-counted multiply-adds."""
    shapes: dict[str, list[int]] = {}
    macs = {"total": 0}

    def hook(name):
        def record(module, inputs, output):
            shapes[name] = list(output.shape[1:])
            if isinstance(module, torch.nn.Conv2d):
                kh, kw = module.kernel_size
                macs["total"] += output.numel() * (module.in_channels // module.groups) * kh * kw
            elif isinstance(module, torch.nn.Linear):
                macs["total"] += output.numel() * module.in_features
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules()
               if name and not list(module.children())]
    model.train(training)
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    for handle in handles:
        handle.remove()
    return shapes, macs["total"]


# ----------------------------------------------------------------------------- published figures
def test_params_without_aux_heads_are_torchvisions_published_count():
    assert report(aux_logits=False).totals.params == TORCHVISION_PARAMS


def test_params_with_aux_heads_match_torchvisions_default_model():
    totals = report(aux_logits=True).totals
    assert totals.params == TORCHVISION_PARAMS_WITH_AUX
    assert totals.params - totals.params_aux == TORCHVISION_PARAMS


def test_aux_heads_are_on_by_default_like_torchvisions_class():
    assert report(aux_logits=True).totals.params == ia.analyze(SPEC).totals.params


def test_inference_macs_are_torchvisions_1_50_gflops_within_1_percent():
    macs = report(aux_logits=False).totals.macs
    assert math.isclose(macs, TORCHVISION_GMACS * 1e9, rel_tol=0.01), macs


def test_aux_heads_cost_training_macs_only():
    with_aux, without = report(aux_logits=True).totals, report(aux_logits=False).totals
    assert with_aux.macs == without.macs
    assert without.macs_aux == 0
    # each head: 1x1 conv 512|528 -> 128 on 4x4, fc 2048 -> 1024, fc 1024 -> 1000
    per_head = lambda c_in: 16 * 128 * c_in + 2048 * 1024 + 1024 * 1000  # noqa: E731
    assert with_aux.macs_aux == per_head(512) + per_head(528)


def test_output_sizes_follow_the_papers_grids():
    shapes = {layer.path: layer.output_shape for layer in report(aux_logits=True).layers}
    assert shapes["conv1.conv"] == [64, 112, 112]
    assert shapes["maxpool1"] == [64, 56, 56]
    assert shapes["maxpool2"] == [192, 28, 28]
    assert shapes["inception3b.concat"] == [480, 28, 28]
    assert shapes["maxpool3"] == [480, 14, 14]
    assert shapes["inception4e.concat"] == [832, 14, 14]
    assert shapes["maxpool4"] == [832, 7, 7]
    assert shapes["inception5b.concat"] == [1024, 7, 7]
    assert shapes["fc"] == [1000]
    assert shapes["aux1.conv.conv"] == [128, 4, 4] and shapes["aux2.conv.conv"] == [128, 4, 4]
    assert shapes["aux1.fc2"] == [1000] and shapes["aux2.fc2"] == [1000]


def test_branch3_uses_3x3_like_torchvision_not_the_papers_5x5():
    graph = ia.load_graph(SPEC)
    kernels = {node.args["kernel"] for node in graph.layers()
               if node.kind == "conv" and ".branch3.1." in node.path}
    assert kernels == {(3, 3)}


def test_metadata_cites_the_paper_and_published_accuracy():
    meta = ia.load_spec(SPEC).metadata
    assert "1409.4842" in meta["venue"] + meta["url"]
    published = {(p.get("top1"), p.get("top5")) for p in meta["published"]}
    assert (69.778, 89.53) in published                  # torchvision IMAGENET1K_V1
    assert any(p.get("top5") == pytest.approx(100 - 10.07) for p in meta["published"])
    assert all(p.get("source") for p in meta["published"])


# ----------------------------------------------------------------------------- against torchvision
def test_torchvision_model_has_the_published_parameter_counts(torchvision):
    for aux_logits, expected in ((True, TORCHVISION_PARAMS_WITH_AUX), (False, TORCHVISION_PARAMS)):
        model = torchvision_model(torchvision, aux_logits)
        assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("aux_logits", [True, False])
def test_every_conv_bn_linear_has_torchvisions_name_and_param_count(torchvision, aux_logits):
    import torch
    theirs = torchvision_weighted(torch, torchvision_model(torchvision, aux_logits))
    ours = weighted_layers(aux_logits)
    assert sorted(set(ours) - set(theirs)) == []      # nothing of ours is missing in torchvision
    assert sorted(set(theirs) - set(ours)) == []      # nothing of torchvision's is missing here
    assert {name: n for name, n in ours.items() if theirs[name] != n} == {}


def test_pool_and_dropout_modules_have_torchvisions_names_and_settings(torchvision):
    import torch
    model = torchvision_model(torchvision, aux_logits=True)
    theirs = dict(model.named_modules())
    graph = ia.load_graph(SPEC, {"aux_logits": True})
    checked = 0
    for node in graph.layers():
        module = theirs.get(node.path)
        if isinstance(module, torch.nn.MaxPool2d):
            assert node.kind == "maxpool", node.path
            assert node.args["kernel"] == (module.kernel_size,) * 2, node.path
            assert node.args["stride"] == (module.stride,) * 2, node.path
            assert node.args["padding"] == (module.padding,) * 2, node.path
            assert node.args["ceil_mode"] == module.ceil_mode, node.path
            checked += 1
        elif isinstance(module, torch.nn.Dropout):
            assert node.kind == "dropout" and node.args["p"] == module.p, node.path
            checked += 1
        elif isinstance(module, torch.nn.Conv2d):
            assert node.args["kernel"] == module.kernel_size, node.path
            assert node.args["stride"] == module.stride, node.path
            assert node.args["padding"] == module.padding, node.path
            assert node.args["bias"] == (module.bias is not None), node.path
            checked += 1
        elif isinstance(module, torch.nn.BatchNorm2d):
            assert node.args["eps"] == module.eps, node.path
            checked += 1
    # 4 grid max pools + 9 branch4 pools, 3 dropouts, and 59 convs and their 59 batch norms
    # (3 in the stem, 6 in each of 9 Inception modules, 1 in each aux head)
    assert checked == 4 + 9 + 3 + 59 + 59


@pytest.mark.parametrize("training", [False, True])
def test_every_module_output_shape_matches_a_torchvision_forward_pass(torchvision, training):
    import torch
    model = torchvision_model(torchvision, aux_logits=True)
    shapes, _ = trace(torch, model, training)
    ours = {layer.path: layer.output_shape for layer in report(aux_logits=True).layers}
    common = sorted(set(shapes) & set(ours))
    # every leaf torchvision runs: 57 conv+bn pairs, 13 max pools, avgpool, dropout, fc; in
    # training also each aux head's conv, bn, fc1, dropout, fc2
    assert len(common) == len(shapes) == 2 * 57 + 13 + 3 + (2 * 5 if training else 0)
    assert {p: (ours[p], shapes[p]) for p in common if ours[p] != shapes[p]} == {}


def test_macs_equal_a_hook_count_on_the_torchvision_model(torchvision):
    import torch
    model = torchvision_model(torchvision, aux_logits=True)
    _, inference = trace(torch, model, training=False)
    _, training = trace(torch, model, training=True)
    totals = report(aux_logits=True).totals
    assert totals.macs == inference
    assert totals.macs + totals.macs_aux == training


# fvcore's per-module and total counts on the same torchvision model are checked for every
# torchvision-compatible spec in test_torchvision_parity.py.

import hashlib
import http.server
import threading

import pytest
import torch
from torch import nn

from engine.models import ARCHS, ConcatPool, create_head, create_model, imagenet_categories


@pytest.fixture(scope="module")
def lite0():
    return create_model("efficientnet_lite0", n_classes=37).eval()


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown architecture 'resnet9000'.*efficientnet_lite0, efficientnet_lite1, "
                                         "efficientnet_lite2, resnet18, resnet34, "
                                         "resnet50, resnet101"):
        create_model("resnet9000")


def test_head_structure_and_output(lite0):
    head = lite0.head
    assert isinstance(head[0], ConcatPool) and isinstance(head[1], nn.BatchNorm1d)
    assert isinstance(head[2], nn.Dropout) and isinstance(head[3], nn.Linear)
    assert head[3].in_features == 2 * 1280 and head[3].out_features == 37
    with torch.no_grad():
        out = lite0(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 37)
    assert lite0.normalization == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def test_concat_pool():
    x = torch.arange(8.0).view(1, 2, 2, 2)
    assert ConcatPool()(x).tolist() == [[1.5, 5.5, 3.0, 7.0]]


def test_param_groups_cover_every_trainable_parameter_once(lite0):
    groups = lite0.param_groups()
    assert len(groups) == 3  # two body groups and the head
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids))
    trainable = {id(p) for n, p in lite0.named_parameters() if not n.startswith("imagenet_classifier")}
    assert set(ids) == trainable
    assert {id(p) for p in groups[-1]} == {id(p) for p in lite0.head.parameters()}


def test_pretrained_imagenet_head_names_the_breed(pets_sample, lite0):
    """Proof that the packaged weights are real and mapped right: ImageNet's own dog/cat classes."""
    from engine.data.augment import BatchAugment
    from engine.data.preprocessing import Preprocessing
    from engine.data.transforms import Presize, load_image, pil_to_tensor

    expected = {"pug": "pug", "keeshond": "keeshond", "samoyed": "Samoyed", "beagle": "beagle",
                "Siamese": "Siamese cat"}
    names = imagenet_categories()
    aug = BatchAugment(Preprocessing(size=224).with_normalization(*lite0.normalization))
    paths, wanted = [], []
    for breed, inet in expected.items():
        for path in sorted((pets_sample / "images").glob(f"{breed}_*.jpg")):
            paths.append(path.name)
            wanted.append(inet)
    xb = torch.stack([pil_to_tensor(Presize(460, "crop")(load_image(pets_sample / "images" / p))) for p in paths])
    with torch.no_grad():
        tops = [names[i] for i in lite0.imagenet_logits(lite0.body(aug(xb, train=False))).argmax(1).tolist()]
    assert len(paths) == 50
    hits = sum(t == w for t, w in zip(tops, wanted))
    assert hits / len(paths) >= 0.85  # measured 0.92 on these breeds; random or mis-mapped weights give ~0
    first = dict(zip(paths, tops))
    assert first["pug_112.jpg"] == "pug" and first["keeshond_111.jpg"] == "keeshond"
    assert first["Siamese_108.jpg"] == "Siamese cat"


@pytest.mark.parametrize("arch,convs", [("resnet18", 20), ("resnet34", 36), ("resnet50", 53), ("resnet101", 104)])
def test_resnets_without_weights(arch, convs):
    m = create_model(arch, n_classes=5, pretrained=False)
    assert m.imagenet_classifier is None and m.normalization[0] == (0.485, 0.456, 0.406)
    n_convs = sum(isinstance(x, nn.Conv2d) for x in m.body.modules())
    assert n_convs == convs  # counted from the model: 50/101 "layers" = these convs' main path + fc
    assert len(m.param_groups()) == 3
    if arch == "resnet18":
        with torch.no_grad():
            assert m.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_resnet101_is_deeper_and_bigger_than_resnet50():
    r50, r101 = create_model("resnet50", pretrained=False), create_model("resnet101", pretrained=False)
    count = lambda m: sum(p.numel() for p in m.body.parameters())  # noqa: E731
    assert count(r101) > 1.7 * count(r50)


@pytest.fixture
def weights_server(tmp_path):
    """Serves a resnet18 state dict under torchvision's name-<sha256 prefix>.pth pattern."""
    import torchvision

    src = tmp_path / "srv"
    src.mkdir()
    sd = torchvision.models.resnet18(weights=None).state_dict()
    raw = src / "raw.pth"
    torch.save(sd, raw)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    name = f"resnet18-{digest[:8]}.pth"
    raw.rename(src / name)
    seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(src), **k)

        def log_message(self, *args):
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/{name}", sd, seen, server
    server.shutdown()


def test_resnet_weights_downloaded_into_the_hub_cache_then_offline(weights_server, tmp_path, monkeypatch):
    url, sd, seen, server = weights_server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    m = create_model("resnet18", pretrained=True, weights_url=url)
    torch.testing.assert_close(m.body[0][0].weight, sd["conv1.weight"])
    assert m.imagenet_classifier is not None and len(seen) == 1
    assert list((tmp_path / "torch" / "hub" / "checkpoints").glob("resnet18-*.pth"))
    server.shutdown()  # offline now: the cached file is enough
    m2 = create_model("resnet18", pretrained=True, weights_url=url)
    torch.testing.assert_close(m2.body[0][0].weight, sd["conv1.weight"])


def test_missing_resnet_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match=r"not in the torch hub cache.*could not be downloaded.*pretrained=False"):
        create_model("resnet34", pretrained=True, weights_url="http://127.0.0.1:9/resnet34-b627a593.pth")


def test_create_head_sizes():
    head = create_head(512, 10, dropout=0.5)
    assert head[2].p == 0.5 and head[3].in_features == 1024
    with pytest.raises(ValueError, match="at least 2"):
        create_model("resnet18", n_classes=1, pretrained=False)


def test_the_imagenet_category_names_are_all_there():
    assert len(imagenet_categories()) == 1000


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_registered_architecture_builds_with_its_groups_and_normalization(arch):
    from engine.models import ARCHS as registry

    model = create_model(arch, n_classes=5, pretrained=False)
    groups = model.param_groups()
    assert len(groups) == 3 and all(groups)  # two body groups, then the head
    assert model.normalization == registry[arch].normalization and model.arch == arch
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 5)


@pytest.mark.parametrize("n", [1, 2])
def test_the_larger_lite_bodies_load_their_packaged_weights(n):
    model = create_model(f"efficientnet_lite{n}", n_classes=3)  # pretrained, offline
    assert model.imagenet_classifier is not None and model.normalization == ((0.5,) * 3, (0.5,) * 3)
    assert float(model.body[0][0].weight.abs().sum()) > 0 and not model.imagenet_classifier.weight.requires_grad


def test_a_new_architecture_is_one_registry_entry():
    from torch import nn

    from engine.models import ARCHS as registry
    from engine.models import register
    from engine.recipe import Recipe
    from engine.train import build_parser

    def tiny(pretrained):
        body = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3)), nn.Sequential(nn.Conv2d(8, 16, 3)))
        return body, 16, nn.Linear(16, 1000)

    # pretrained at 224 px: the recipe's 288 is within what such a body may be served at (4x)
    register("tiny", tiny, ((0.5,) * 3, (0.5,) * 3), "nowhere", 224)
    try:  # the one entry is all the model factory, the recipe and the command line need
        assert create_model("tiny", n_classes=4, pretrained=False).arch == "tiny"
        assert Recipe(arch="tiny").arch == "tiny"
        assert build_parser().parse_args(["--data", "x", "--arch", "tiny"]).arch == "tiny"
        with pytest.raises(ValueError, match="registered already"):
            register("tiny", tiny, ((0.5,) * 3, (0.5,) * 3), "nowhere", 224)
    finally:
        registry.pop("tiny")
    with pytest.raises(ValueError, match="unknown architecture 'giant': choose one of efficientnet_lite0"):
        create_model("giant")

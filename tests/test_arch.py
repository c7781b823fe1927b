"""train --arch SPEC (chapter 6): the spec grammar, the networks it builds, the command, the
ch6 presets on the digits and resuming a conv run."""

import numpy as np
import pytest

from tinygrad_sgd import nn
from tinygrad_sgd.cli import main
from tinygrad_sgd.tensor import Tensor
from tinygrad_sgd.train import PRESETS, build_network, load_checkpoint, train
from tinygrad_sgd.train.arch import ARCH_GRAMMAR, Conv, Fc, Pool, parse_arch


def shapes(model):
    return [(type(m).__name__, tuple(m.weight.shape)) for m in model if hasattr(m, "weight")]


def test_good_specs_parse():
    assert parse_arch("conv20x5,pool2,fc100") == [Conv(20, 5), Pool(2), Fc(100)]
    assert parse_arch("conv8x3s2p1, conv4x2p3,fc7,fc3") == [
        Conv(8, 3, 2, 1),
        Conv(4, 2, 1, 3),
        Fc(7),
        Fc(3),
    ]


@pytest.mark.parametrize(
    "n_in, spec, want, out_shape",
    [
        # the book's first conv net: 28 -> 24 -> 12, 20·12·12 = 2880 inputs to fc100
        (784, "conv20x5,pool2,fc100", [(20, 1, 5, 5), (100, 2880), (10, 100)], (3, 20, 24, 24)),
        # its second: 12 -> 8 -> 4, 40·4·4 = 640
        (
            784,
            "conv20x5,pool2,conv40x5,pool2,fc100",
            [(20, 1, 5, 5), (40, 20, 5, 5), (100, 640), (10, 100)],
            (3, 20, 24, 24),
        ),
        # stride 2 and padding 1 on 8x8: (8 + 2 - 3) // 2 + 1 = 4, 6·4·4 = 96
        (64, "conv6x3s2p1,fc5", [(6, 1, 3, 3), (5, 96), (10, 5)], (3, 6, 4, 4)),
        (64, "pool2,fc9", [(9, 16), (10, 9)], (3, 16)),  # images, pool, flatten
    ],
)
def test_specs_build_the_right_layer_shapes(n_in, spec, want, out_shape):
    net = build_network([n_in, 10], init="scaled", seed=0, arch=spec, output="softmax")
    weights = [tuple(m.weight.shape) for m in net if hasattr(m, "weight")]
    assert weights == want
    x = Tensor(np.random.default_rng(0).random((3, n_in), dtype=np.float32))
    assert net(x).shape == (3, 10)
    assert net[:3](x).shape == out_shape  # images (N, 1, side, side), the first layer, ...
    assert isinstance(net[-1], nn.Softmax)


def test_an_fc_only_spec_is_the_hidden_network():
    kw = dict(init="scaled", seed=3, dropout=0.3, dropout_seed=7, activation="relu")
    a = build_network([64, 10], arch="fc30,fc20", **kw)
    b = build_network([64, 30, 20, 10], **kw)
    assert [type(m) for m in a] == [type(m) for m in b]
    x = Tensor(np.random.default_rng(1).random((4, 64), dtype=np.float32))
    np.testing.assert_array_equal(a(x).data, b(x).data)  # same weights and dropout masks


def test_dropout_drops_the_inputs_of_each_fully_connected_layer_after_conv():
    net = build_network([64, 10], arch="conv4x3,pool2,fc20,fc20", dropout=0.5, dropout_seed=0)
    kinds = [type(m).__name__ for m in net]
    assert kinds == [
        "_Images", "Conv2d", "Sigmoid", "MaxPool2d", "Flatten",
        "Dropout", "Linear", "Sigmoid", "Dropout", "Linear", "Sigmoid", "Dropout", "Linear",
        "Sigmoid",
    ]  # fmt: skip
    gens = [m.generator.random() for m in net if isinstance(m, nn.Dropout)]
    assert len(set(gens)) == 3  # each its own stream


MALFORMED = [
    ("", "an empty layer"),
    ("conv20x5,,fc10", "an empty layer"),
    ("conv20x", "'conv20x' is not a layer"),
    ("conv20", "'conv20' is not a layer"),
    ("conv0x5", "'conv0x5' needs C, K and S >= 1"),
    ("conv4x0", "'conv4x0' needs C, K and S >= 1"),
    ("conv4x3s0", "'conv4x3s0' needs C, K and S >= 1"),
    ("conv4x3p1s2", "'conv4x3p1s2' is not a layer"),
    ("pool", "'pool' is not a layer"),
    ("pool0", "'pool0' needs K >= 1"),
    ("fc0", "'fc0' needs N >= 1"),
    ("fc-3", "'fc-3' is not a layer"),
    ("dense100", "'dense100' is not a layer"),
    ("fc100,conv20x5", "'conv20x5' comes after a fully connected layer"),
    ("fc100,pool2", "'pool2' comes after a fully connected layer"),
]


@pytest.mark.parametrize("spec, why", MALFORMED)
def test_each_malformed_spec_is_an_error_that_shows_the_grammar(spec, why):
    with pytest.raises(ValueError) as info:
        parse_arch(spec)
    msg = str(info.value)
    assert msg == f"bad --arch {spec!r}: {why}; the spec is {ARCH_GRAMMAR}"
    assert "\n" not in msg


@pytest.mark.parametrize("spec, why", MALFORMED[2:5])
def test_a_malformed_spec_on_the_command_line_is_a_one_line_error(capsys, spec, why):
    with pytest.raises(SystemExit) as info:
        main(["train", "--arch", spec])
    assert info.value.code == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert err == [f"tinygrad-sgd train: error: argument --arch: bad --arch {spec!r}: {why}; "
                   f"the spec is {ARCH_GRAMMAR}"]  # fmt: skip


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--arch", "conv4x3,pool9"], "pool9's 9x9 window does not fit the 6x6 feature maps"),
        (["--arch", "conv4x9"], "conv4x9s1p0's 9x9 window does not fit the 8x8 feature maps"),
        (["--arch", "fc10", "--hidden", "30"], "give the hidden layers with --hidden or --arch"),
    ],
)
def test_a_network_that_does_not_fit_is_a_one_line_error_before_training(capsys, argv, msg):
    code = main(["train", "--epochs", "1", *argv])
    out, err = capsys.readouterr()
    assert code == 1 and "Epoch" not in out
    assert msg in err and err.count("\n") == 1


def test_images_must_be_square():
    with pytest.raises(ValueError, match="need square images.*63 inputs"):
        build_network([63, 10], arch="conv2x3,fc5")


def test_train_arch_conv_learns_the_digits(capsys, tmp_path):
    ck = tmp_path / "ck.npz"
    argv = ["--arch", "conv20x3,pool2,fc100", "--activation", "relu", "--output", "softmax"]
    argv += ["--init", "scaled", "--lr", "0.1", "--epochs", "3", "--save", str(ck)]
    assert main(["train", *argv]) == 0
    out = capsys.readouterr().out
    assert "Network [64, conv20x3,pool2,fc100, 10] of relu hidden neurons" in out
    last = [ln for ln in out.splitlines() if ln.startswith("Epoch 2:")][0]
    assert int(last.split(":")[1].split("/")[0]) >= 300  # of 360; chance is 36
    model, saved = load_checkpoint(ck)
    assert saved["config"].arch == "conv20x3,pool2,fc100"
    assert shapes(model)[0] == ("Conv2d", (20, 1, 3, 3))


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_array_equal(sa[k].data, sb[k].data, err_msg=k)


def test_resume_with_arch_ends_at_the_uninterrupted_weights(tmp_path):
    options = dict(arch="conv4x3p1,pool2,fc16", dropout=0.3, lr=0.5, init="scaled")
    full, ck = tmp_path / "full.npz", tmp_path / "ck.npz"
    m_full, h_full = train(epochs=3, seed=2, save=full, log=None, **options)
    train(epochs=1, seed=2, save=ck, log=None, **options)
    m_res, h_res = train(resume=ck, epochs=3, log=None)
    assert_same_weights(m_full, m_res)
    assert h_res.correct == h_full.correct
    with pytest.raises(ValueError, match="made with arch='conv4x3p1,pool2,fc16'.*cannot change"):
        train(resume=ck, epochs=3, arch="conv4x3,fc16", log=None)


CH6 = [name for name in PRESETS if name.startswith("ch6-")]


def test_the_ch6_presets_are_the_books():
    assert CH6 == ["ch6-conv", "ch6-conv2", "ch6-relu", "ch6-dropout"]
    mnist = {name: {**PRESETS[name].settings, **PRESETS[name].mnist} for name in CH6}
    assert mnist["ch6-conv"]["arch"] == "conv20x5,pool2,fc100"
    assert mnist["ch6-conv"]["lr"] == 0.1 and mnist["ch6-conv"]["output"] == "softmax"
    two = "conv20x5,pool2,conv40x5,pool2"
    assert mnist["ch6-conv2"]["arch"] == two + ",fc100"
    assert mnist["ch6-relu"]["arch"] == two + ",fc100"
    assert (mnist["ch6-relu"]["activation"], mnist["ch6-relu"]["lmbda"]) == ("relu", 0.1)
    assert mnist["ch6-relu"]["lr"] == 0.03
    assert mnist["ch6-dropout"]["arch"] == two + ",fc1000,fc1000"
    assert mnist["ch6-dropout"]["dropout"] == 0.5
    for name in CH6:  # the digits: 3x3 kernels
        assert "x5" not in PRESETS[name].settings["arch"]
        assert "x3" in PRESETS[name].settings["arch"]


@pytest.mark.parametrize("name", CH6)
def test_each_ch6_preset_runs_one_epoch_on_the_digits(capsys, name):
    assert main(["train", "--preset", name, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert f"--arch {PRESETS[name].settings['arch']} " in out.splitlines()[0]
    assert any(ln.startswith("Epoch 0: ") for ln in out.splitlines())


def test_a_ch6_preset_on_mnist_sets_the_books_network(capsys, tmp_path):
    # no MNIST here: the run stops at the data, after printing what the preset set
    code = main(["train", "--preset", "ch6-conv", "--dataset", "mnist", "--no-download",
                 "--data-dir", str(tmp_path)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1 and "error:" in err
    assert "--arch conv20x5,pool2,fc100 " in out.splitlines()[0]


def test_a_checkpoint_with_a_tampered_arch_is_refused_before_its_network_is_built(tmp_path):
    import tracemalloc

    import tinygrad_sgd as tg

    ck = tmp_path / "ck.npz"
    train(epochs=1, seed=1, save=ck, log=None, arch="conv4x3,pool2,fc16")
    state = tg.load(ck)
    for spec, why in [("conv100000x3,fc16", "at most 10000"), ("conv4x3,poolx", "pool")]:
        state["config"]["arch"] = spec
        bad = tmp_path / "bad.npz"
        tg.save(state, bad)
        tracemalloc.start()
        with pytest.raises(ValueError, match=why) as info:
            load_checkpoint(bad)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert str(bad) in str(info.value) and "\n" not in str(info.value)
        assert peak < 4 * 2**20  # refused before 100,000 feature maps were allocated
    state["config"]["arch"] = "conv4x3,pool2,fc17"  # parses, but the weights are fc16's
    tg.save(state, bad)
    with pytest.raises(ValueError, match="do not fit the config"):
        load_checkpoint(bad)

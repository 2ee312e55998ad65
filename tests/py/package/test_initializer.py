"""spore.common.initializer: MindSpore's formulas (fans, gains, bounds), the
moments and bounds of every distribution on large draws, reproducibility
under spore.set_seed, dtypes, and errors naming the bad argument."""
import math

import numpy as np
import pytest

import spore
from spore import Tensor, nn
from spore.common.initializer import (initializer, Normal, TruncatedNormal, Uniform, XavierUniform, XavierNormal,
                                      HeUniform, HeNormal, Zero, One, Constant, calculate_gain)

SHAPE = (256, 64, 3, 3)           # fan_in 576, fan_out 2304, 147456 values
FAN_IN, FAN_OUT = 64 * 9, 256 * 9


def draw(init, shape=SHAPE, dtype=spore.float32):
    t = initializer(init, shape, dtype)
    assert tuple(t.shape) == (tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)) and t.dtype == dtype
    return t.asnumpy().astype(np.float64)


def test_normal_moments():
    a = draw(Normal(sigma=0.5, mean=2.0))
    assert abs(a.mean() - 2.0) < 0.01 and abs(a.std() - 0.5) < 0.005
    b = draw("normal")                       # MindSpore's 'normal': sigma 0.01
    assert abs(b.mean()) < 1e-4 and abs(b.std() - 0.01) < 1e-4


def test_uniform_bounds_and_variance():
    a = draw(Uniform(0.3))
    assert a.min() >= -0.3 and a.max() < 0.3 and a.max() > 0.299 and a.min() < -0.299
    assert abs(a.var() - 0.3 ** 2 / 3) < 2e-4
    assert abs(draw("uniform").max() - 0.07) < 1e-3   # default scale 0.07


def test_truncated_normal_is_truncated_not_clipped():
    a = draw(TruncatedNormal(sigma=1.0, mean=0.0, a=-2.0, b=2.0))
    assert a.min() >= -2.0 and a.max() <= 2.0
    # the std of N(0,1) truncated to [-2, 2] is 0.8796; a clip would give 0.9266
    # and pile ~2.3% of the values exactly on the bounds
    assert abs(a.std() - 0.8796) < 0.005
    assert np.mean(np.abs(a) == 2.0) < 1e-4
    d = draw("truncatednormal")              # sigma 0.01: the bounds never bind
    assert abs(d.std() - 0.01) < 1e-4


def test_xavier():
    bound = 1.5 * math.sqrt(6.0 / (FAN_IN + FAN_OUT))
    a = draw(XavierUniform(gain=1.5))
    assert a.max() <= bound and a.min() >= -bound and a.max() > 0.99 * bound
    b = draw(XavierNormal(gain=2.0))
    assert abs(b.std() - 2.0 * math.sqrt(2.0 / (FAN_IN + FAN_OUT))) < 1e-3 * 2
    c = draw("xavier_uniform", (30, 50))     # 2-D: fan_in = shape[1], fan_out = shape[0]
    assert c.max() <= math.sqrt(6.0 / 80) and c.max() > 0.95 * math.sqrt(6.0 / 80)


def test_he():
    # HeUniform(sqrt(5)): bound 1/sqrt(fan_in), the default Dense/Conv2d weight
    a = draw(HeUniform(math.sqrt(5)))
    assert a.max() <= 1 / math.sqrt(FAN_IN) and a.max() > 0.99 / math.sqrt(FAN_IN)
    # default (leaky_relu, slope 0): gain sqrt(2), bound sqrt(6/fan_in)
    b = draw("he_uniform")
    assert b.max() <= math.sqrt(6 / FAN_IN) and b.max() > 0.99 * math.sqrt(6 / FAN_IN)
    c = draw(HeNormal(mode="fan_out", nonlinearity="relu"))
    assert abs(c.std() - math.sqrt(2 / FAN_OUT)) < 3e-4
    d = draw("he_normal")
    assert abs(d.std() - math.sqrt(2 / FAN_IN)) < 5e-4


def test_constants_and_dtypes():
    assert (draw(Zero(), (3, 4)) == 0).all() and (draw("zeros", 5) == 0).all()
    assert (draw(One(), (2, 2)) == 1).all() and (draw("ones", [7]) == 1).all()
    assert (draw(Constant(2.5), (2, 3)) == 2.5).all() and (draw(-3, (4,)) == -3).all()
    i = initializer("ones", (3,), spore.int32)
    assert i.dtype == spore.int32 and i.asnumpy().tolist() == [1, 1, 1]
    h = initializer(Normal(1.0), (1000,), spore.float16)
    assert h.dtype == spore.float16 and 0.9 < float(np.std(h.asnumpy().astype(np.float32))) < 1.1
    d = initializer(Normal(1.0), (4, 4), spore.float64)
    assert d.dtype == spore.float64
    t = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert initializer(t, (2, 3)) is t
    # MindSpore's in-place form on a numpy array
    arr = np.zeros((10, 20), np.float32)
    assert Uniform(0.1)(arr) is arr and 0 < np.abs(arr).max() < 0.1


@pytest.mark.parametrize("init", ["normal", "uniform", "truncatednormal", "xavier_uniform", "xavier_normal",
                                  "he_uniform", "he_normal"])
def test_same_seed_same_values(init):
    spore.set_seed(1234)
    a = draw(init, (16, 8))
    b = draw(init, (16, 8))
    spore.set_seed(1234)
    c = draw(init, (16, 8))
    assert np.array_equal(a, c)
    assert not np.array_equal(a, b)          # the generator moves on between draws
    spore.set_seed(4321)
    assert not np.array_equal(a, draw(init, (16, 8)))


def test_layers_default_init_follows_the_seed():
    spore.set_seed(7)
    a = nn.Dense(5, 4)
    c1 = nn.Conv2d(3, 2, 3, has_bias=True)
    spore.set_seed(7)
    b = nn.Dense(5, 4)
    c2 = nn.Conv2d(3, 2, 3, has_bias=True)
    assert np.array_equal(a.weight.asnumpy(), b.weight.asnumpy())
    assert np.array_equal(a.bias.asnumpy(), b.bias.asnumpy())
    assert np.array_equal(c1.weight.asnumpy(), c2.weight.asnumpy())
    assert np.array_equal(c1.bias.asnumpy(), c2.bias.asnumpy())


def test_calculate_gain():
    assert calculate_gain("linear") == 1 and calculate_gain("sigmoid") == 1
    assert calculate_gain("tanh") == pytest.approx(5 / 3)
    assert calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="nonlinearity 'swish'"):
        calculate_gain("swish")


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="unknown initializer 'gaussian'"):
        initializer("gaussian", (2, 2))
    with pytest.raises(TypeError, match="'init' must be"):
        initializer([1, 2], (2,))
    with pytest.raises(ValueError, match="'shape' is required"):
        initializer("ones")
    with pytest.raises(ValueError, match="'shape' must not hold negative"):
        initializer("ones", (2, -1))
    with pytest.raises(TypeError, match="'shape' must be an int or a tuple"):
        initializer("ones", (2.5,))
    with pytest.raises(TypeError, match="'dtype' must be a Spore dtype"):
        initializer("ones", (2,), np.float32)
    with pytest.raises(ValueError, match="does not match 'shape'"):
        initializer(Tensor(np.zeros((2, 3), np.float32)), (3, 2))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        initializer("xavier_uniform", (5,))
    with pytest.raises(ValueError, match="'mode' must be 'fan_in' or 'fan_out'"):
        HeUniform(mode="fan_avg")
    with pytest.raises(ValueError, match="'sigma' must be >= 0"):
        Normal(sigma=-1.0)
    with pytest.raises(ValueError, match="'a' .* must be less than 'b'"):
        TruncatedNormal(a=1.0, b=-1.0)
    with pytest.raises(TypeError, match="'value' must be a number"):
        Constant("x")

# math.* on Python floats differentiates (rules in _ad_math), to any
# order; values checked against torch.autograd in float64 (numbers below).
import math
import spore


def f(x):
    return math.sin(x) * x * x


def g(x):
    return (math.exp(x) + math.sqrt(x) + math.log(x) + math.tanh(x) + math.pow(x, 3.0) + math.atan2(x, 2.0) +
            math.floor(x) + math.erf(x) + math.log2(x) + math.log10(x) + math.fabs(-x) + math.cos(x) + math.tan(x))


def main():
    g1 = spore.grad(f)
    g2 = spore.grad(g1)
    g3 = spore.grad(g2)
    x = 0.5
    s = math.sin(x)
    c = math.cos(x)
    print(abs(g1(x) - (c * x * x + 2.0 * x * s)) < 1e-12, abs(g2(x) - (-s * x * x + 4.0 * x * c + 2.0 * s)) < 1e-12,
          abs(g3(x) - (-c * x * x - 6.0 * x * s + 6.0 * c)) < 1e-12)
    print(abs(spore.grad(g)(0.7) - 12.028032822157384) < 1e-9,
          abs(spore.grad(spore.grad(g))(0.7) - 0.15642992102638686) < 1e-9)
# expect: True True True
# expect: True True

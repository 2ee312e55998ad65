# The math module on Python scalars.
import math


def hypot(a, b):
    return math.sqrt(a * a + b * b)


def main():
    print(hypot(3, 4), math.floor(2.7), math.ceil(2.1), math.floor(-2.5), math.trunc(-2.5))
    print(math.pi, math.e, math.inf > 1e308, math.isnan(math.nan), math.isinf(-math.inf))
    print(math.exp(0), math.log(math.e), math.log(8, 2), math.log2(1024), math.log10(1000))
    print(math.fabs(-3), math.pow(2, 10), math.atan2(0.0, 1.0), math.sin(0.0), math.cos(0.0))
    return round_to(math.tanh(1.0), 6), math.isfinite(1.0)


def round_to(x, digits):
    scale = 10 ** digits
    return math.floor(x * scale + 0.5) / scale

# expect: 5.0 2 3 -3 -2
# expect: 3.141592653589793 2.718281828459045 True True True
# expect: 1.0 1.0 3.0 10.0 3.0
# expect: 3.0 1024.0 0.0 0.0 1.0
# expect: (0.761594, True)

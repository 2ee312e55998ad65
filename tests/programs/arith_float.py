# Floats print as Python's repr; float floor division and modulo follow
# Python's divmod; conversions between int, float, bool and str.
def main():
    print(0.1 + 0.2, 1.5 * 2, 1e-5, 1e16, 2.0 ** 0.5, 10 / 4)
    print(7.5 // 2, -7.5 // 2, 7.5 % 2, -7.5 % 2, 7.5 % -2)
    print(int(3.9), int(-3.9), int("42"), int(True), float(3), float("2.5"), float(" 7 "))
    print(bool(0), bool(2), bool(0.0), bool(""), bool("x"), bool(()), bool((0,)), bool(None))
    print(str(3), str(2.5), str(True), str(None), str((1, "a")))
    print(abs(-2.5), min(2.5, 1), max(-1, -0.5), 3 > 2.5, 2.5 == 2.5)
    y = 1.0
    y /= 4
    y += 0.125
    return y, -0.0, 1.0 / 3.0

# expect: 0.30000000000000004 3.0 1e-05 1e+16 1.4142135623730951 2.5
# expect: 3.0 -4.0 1.5 0.5 -0.5
# expect: 3 -3 42 1 3.0 2.5 7.0
# expect: False True False False True False True False
# expect: 3 2.5 True None (1, 'a')
# expect: 2.5 1 -0.5 True True
# expect: (0.375, -0.0, 0.3333333333333333)

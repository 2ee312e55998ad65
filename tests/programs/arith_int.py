# Python int semantics: floor division and modulo take the divisor's sign,
# true division gives a float, ** on ints stays exact, bools are ints.
def main():
    print(7 // 2, -7 // 2, 7 // -2, -7 // -2)
    print(7 % 3, -7 % 3, 7 % -3, -7 % -3)
    print(7 / 2, -7 / 2, 6 / 3, 1 / 3)
    print(2 ** 10, (-3) ** 3, 2 ** -1, 10 ** 18)
    print(True + True, True * 10, False - 1, -True)
    print(3 * 4 - 5 + 6 // 4, (3 + 4) * 5, 17 % 5 * 2)
    x = 10
    x += 5
    x -= 3
    x *= 2
    x //= 5
    x %= 3
    x **= 3
    print(x)
    print(abs(-5), abs(3), min(4, 2, 8), max(4, 2, 8), min((9, 7, 8)), max([1, 5, 3]))
    print(1 < 2, 2 <= 2, 3 > 4, 3 >= 4, 1 == 1, 1 != 1, 1 == 1.0, True == 1)
    return -(2 ** 62) // 3, 9223372036854775807 % 10

# expect: 3 -4 -4 3
# expect: 1 2 -2 -1
# expect: 3.5 -3.5 2.0 0.3333333333333333
# expect: 1024 -27 0.5 1000000000000000000
# expect: 2 10 -1 -1
# expect: 8 35 4
# expect: 1
# expect: 5 3 2 8 7 5
# expect: True True False False True False True True
# expect: (-1537228672809129302, 7)

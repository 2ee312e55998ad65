# isinstance, len, min/max over sequences, abs, pass and assert, module
# constants and a docstring.
"""A module docstring."""
SCALE = 3
NAMES = ("a", "b", "c")
OFFSET = -2.5


def main():
    """The entry point."""
    print(isinstance(1, int), isinstance(True, int), isinstance(1, float), isinstance(1.5, float))
    print(isinstance("s", str), isinstance((1,), tuple), isinstance([1], list), isinstance([1], tuple))
    print(isinstance(1, (float, int)), isinstance(None, (int, str)), isinstance(False, bool))
    print(len(NAMES), NAMES[SCALE - 1], OFFSET * 2, min(NAMES), max("spore"))
    print(max((3, 1), (2, 9)), min(-1, -1.5), abs(-0.25), max(0, -0.0))
    assert SCALE == 3
    assert len(NAMES) > 1, "names"
    if SCALE:
        pass
    return SCALE * 2, NAMES


if __name__ == "__main__":
    main()

# expect: True True False True
# expect: True True True False
# expect: True False True
# expect: 3 c -5.0 a s
# expect: (3, 1) -1.5 0.25 0
# expect: (6, ('a', 'b', 'c'))

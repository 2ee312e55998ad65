# Strings: concatenation, repetition, indexing, slicing, `in`, comparison.
def main():
    s = "spore"
    t = s + " " + "runs"
    print(t, len(t), t[0], t[-1], t[1:4], t[::-1], t[::2])
    print("ab" * 3, 2 * "xy", "or" in s, "x" in s, "x" not in s)
    print("abc" < "abd", "b" > "abc", "a" == "a", "a" != "b")
    print(s, 's', "it's", 'say "hi"')
    return "done", ("a", 'b')

# expect: spore runs 10 s s por snur erops soern
# expect: ababab xyxy True False True
# expect: True True True True
# expect: spore s it's say "hi"
# expect: ('done', ('a', 'b'))

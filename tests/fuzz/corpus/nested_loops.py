import spore
from spore import ops

def main():
    total = 0
    for i in range(3):
        for j in range(i, 10):
            if j > 5:
                break
            elif j == 2:
                continue
            def sq(v, w=2):
                return v ** w + i
            total += sq(j)
            sq2 = [sq(k) for k in (1, 2)]
        else:
            total -= 1
        while total > 100 and i:
            total //= 2
            if total < 3:
                return total
    x = ops.ones((2, 3), spore.float32)
    y = x.sum(axis=0) if total else x
    print("total", total, y)
    return x[0, 1:] @ x.T, total, sq2

# Tensors through control flow: if on a one-element tensor, a while loop of
# gradient steps, a for loop over tensor rows, tensors in tuples.
from spore import ops


def relu_or_neg(x):
    if x.sum() > 0:
        return ops.relu(x)
    return -x


def main():
    print(relu_or_neg(ops.tensor([1.0, -2.0, 3.0])), relu_or_neg(ops.tensor([-1.0, -2.0])))
    # minimize (w - 3)^2 by gradient descent
    w = ops.tensor(0.0)
    step = 0
    while step < 100:
        grad = 2 * (w - 3)
        w = w - 0.1 * grad
        step += 1
    print(step, abs(w.item() - 3.0) < 1e-6)
    m = ops.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    acc = ops.zeros(2)
    for row in m:
        acc = acc + row
    print(acc, len(m))
    norms = ()
    for i, row in enumerate(m):
        norms = norms + ((i, (row * row).sum().item()),)
    print(norms)
    best = m[0]
    for r in m:
        best = r if r.sum() > best.sum() else best
    return best, (acc, acc.shape)

# expect: [1. 0. 3.] [1. 2.]
# expect: 100 True
# expect: [ 9. 12.] 3
# expect: ((0, 5.0), (1, 25.0), (2, 61.0))
# expect: ([5. 6.], ([ 9. 12.], (2,)))

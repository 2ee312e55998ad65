# MindSpore's GradOperation examples: get_all, get_by_list, sens_param, and
# has_aux / stop_gradient.
import spore
from spore import ops


def main():
    x = ops.tensor([[0.8, 0.6, 0.2], [1.8, 1.3, 1.1]])
    y = ops.tensor([[0.11, 3.3, 1.1], [1.1, 0.2, 1.4], [1.1, 2.2, 0.3]])
    z = ops.tensor([1.0])

    def net(a, b):
        return (a @ b * z).sum()

    # GradOperation(): the first input's gradient
    print(ops.GradOperation()(net)(x, y))
    # get_all: every input's gradient
    gx, gy = ops.GradOperation(get_all=True)(net)(x, y)
    print(gy)
    # get_by_list: the captured weight z
    print(ops.GradOperation(get_by_list=True)(net, (z,))(x, y))

    # sens_param: the output's gradient is the last argument
    def net2(a, b):
        return a @ b * z
    sens = ops.ones((2, 3)) * 0.5
    print(ops.GradOperation(sens_param=True)(net2)(x, y, sens))

    def aux(a):
        return (a * a).sum(), a + 1.0
    print(spore.grad(aux, has_aux=True)(z))

    def stopped(a):
        return (a * ops.stop_gradient(a)).sum()
    print(spore.grad(stopped)(ops.tensor([3.0])))
# expect: [[4.5099998 2.7       3.6000001]
# expect:  [4.5099998 2.7       3.6000001]]
# expect: [[2.6       2.6       2.6      ]
# expect:  [1.9       1.9       1.9      ]
# expect:  [1.3000001 1.3000001 1.3000001]]
# expect: ([21.536001],)
# expect: [[2.2549999 1.35      1.8000001]
# expect:  [2.2549999 1.35      1.8000001]]
# expect: ([2.], ([2.],))
# expect: [3.]

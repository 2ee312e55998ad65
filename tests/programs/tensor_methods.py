# Tensor methods and properties (MindSpore's Tensor): reshape, sum, mean,
# max, min, argmax, T, astype, flatten, squeeze, expand_dims, transpose,
# item, tolist, clip, and the shape/ndim/dtype/size properties.
import spore
from spore import ops


def main():
    x = ops.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    print(x.shape, x.ndim, x.dtype, x.size, x.T.shape)
    print(x.reshape(3, 2), x.reshape((1, 6)), x.reshape(-1))
    print(x.sum(), x.sum(0), x.sum(axis=1), x.sum(1, keepdims=True))
    print(x.mean(), x.mean(0), x.mean(axis=1, keep_dims=True))
    print(x.max(), x.min(), x.max(axis=0), x.argmax(), x.argmax(axis=1))
    print(x.T, x.transpose(), x.transpose(1, 0).shape)
    print(x.astype(spore.int32), x.astype(spore.bool_), x.astype(spore.float64).dtype)
    print(x.flatten(), x.reshape(1, 2, 1, 3).squeeze().shape, x.expand_dims(1).shape, x.unsqueeze(0).shape)
    print(x[0, 0].item(), x.tolist(), x.sum().item() / 2)
    print(x.clip(2.0, 5.0), x.abs().sum(), (-x).abs().max(), x.exp().shape)
    print(x.sum(dtype=spore.int32), x.all(), (x > 3).any(), (x > 3).all(axis=1))
    print(x.cumsum(), x.prod(), x.softmax(axis=0).sum(axis=0))
    return x.T.reshape(2, 3)

# expect: (2, 3) 2 spore.float32 6 (3, 2)
# expect: [[1. 2.]
# expect:  [3. 4.]
# expect:  [5. 6.]] [[1. 2. 3. 4. 5. 6.]] [1. 2. 3. 4. 5. 6.]
# expect: 21.0 [5. 7. 9.] [ 6. 15.] [[ 6.]
# expect:  [15.]]
# expect: 3.5 [2.5 3.5 4.5] [[2.]
# expect:  [5.]]
# expect: 6.0 1.0 [4. 5. 6.] 5 [2 2]
# expect: [[1. 4.]
# expect:  [2. 5.]
# expect:  [3. 6.]] [[1. 4.]
# expect:  [2. 5.]
# expect:  [3. 6.]] (3, 2)
# expect: [[1 2 3]
# expect:  [4 5 6]] [[ True  True  True]
# expect:  [ True  True  True]] spore.float64
# expect: [1. 2. 3. 4. 5. 6.] (2, 3) (2, 1, 3) (1, 2, 3)
# expect: 1.0 [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]] 10.5
# expect: [[2. 2. 3.]
# expect:  [4. 5. 5.]] 21.0 6.0 (2, 3)
# expect: 21 True True [False  True]
# expect: [ 1.  3.  6. 10. 15. 21.] 720.0 [1. 1. 1.]
# expect: [[1. 4. 2.]
# expect:  [5. 3. 6.]]

# GPT-2 small (12 layers, 12 heads, d=768, vocab 50257) in the source
# language: the forward pass and the loss, differentiated with respect to
# every parameter.  bench/bench_compile_time.c compiles `gpt2_small` (and
# `train_grad` / `loss_fn` on shape-only parameters) and reports the time of
# each compile stage; `main` runs a tiny configuration (the same code at
# d=32) so the program's correctness is checked by running it.
#
# Parameters travel as one flat tuple in the order make_params builds them:
#   wte, wpe, then per layer
#     ln1_g, ln1_b, w_qkv, b_qkv, w_proj, b_proj, ln2_g, ln2_b, w_fc, b_fc, w_out, b_out
#   then lnf_g, lnf_b.  The output projection is tied to wte (as GPT-2).
import spore
from spore import ops

PER_LAYER = 12


def make_params(vocab, n_ctx, d, n_layer):
    spore.set_seed(0)
    params = (ops.normal((vocab, d), 0.0, 0.02), ops.normal((n_ctx, d), 0.0, 0.01))
    for i in range(n_layer):
        params = params + (
            ops.ones(d), ops.zeros(d),
            ops.normal((d, 3 * d), 0.0, 0.02), ops.zeros(3 * d),
            ops.normal((d, d), 0.0, 0.02), ops.zeros(d),
            ops.ones(d), ops.zeros(d),
            ops.normal((d, 4 * d), 0.0, 0.02), ops.zeros(4 * d),
            ops.normal((4 * d, d), 0.0, 0.02), ops.zeros(d),
        )
    return params + (ops.ones(d), ops.zeros(d))


def attention(x, w_qkv, b_qkv, w_proj, b_proj, n_head, mask):
    b, t, d = x.shape
    hd = d // n_head
    qkv = x @ w_qkv + b_qkv
    q, k, v = ops.split(qkv, d, axis=2)
    q = q.reshape(b, t, n_head, hd).transpose(0, 2, 1, 3)
    k = k.reshape(b, t, n_head, hd).transpose(0, 2, 3, 1)
    v = v.reshape(b, t, n_head, hd).transpose(0, 2, 1, 3)
    att = (q @ k) * (1.0 / (hd ** 0.5))
    att = ops.where(mask, att, ops.full_like(att, -1e9))
    y = ops.softmax(att, axis=-1) @ v
    y = y.transpose(0, 2, 1, 3).reshape(b, t, d)
    return y @ w_proj + b_proj


def block(x, p, n_head, mask):
    ln1_g, ln1_b, w_qkv, b_qkv, w_proj, b_proj, ln2_g, ln2_b, w_fc, b_fc, w_out, b_out = p
    d = x.shape[2]
    x = x + attention(ops.layer_norm(x, (d,), ln1_g, ln1_b), w_qkv, b_qkv, w_proj, b_proj, n_head, mask)
    h = ops.gelu(ops.layer_norm(x, (d,), ln2_g, ln2_b) @ w_fc + b_fc, approximate="tanh")
    return x + h @ w_out + b_out


def loss_fn(params, tokens, targets, n_layer, n_head):
    b, t = tokens.shape
    wte = params[0]
    d = wte.shape[1]
    pos = ops.arange(t)
    x = ops.embedding(tokens, wte) + ops.embedding(pos, params[1])
    mask = ops.arange(t).reshape(t, 1) >= ops.arange(t).reshape(1, t)
    for i in range(n_layer):
        x = block(x, params[2 + PER_LAYER * i: 2 + PER_LAYER * (i + 1)], n_head, mask)
    x = ops.layer_norm(x, (d,), params[-2], params[-1])
    logits = x @ wte.T
    return ops.cross_entropy(logits.reshape(b * t, -1), targets.reshape(b * t))


def train_grad(params, tokens, targets):
    return spore.value_and_grad(loss_fn)(params, tokens, targets, 12, 12)


def gpt2_small():
    # what bench/bench_compile_time.py compiles (and never runs): batch 8,
    # sequence 128, the real GPT-2 small sizes
    params = make_params(50257, 1024, 768, 12)
    tokens = ops.zeros((8, 128), dtype=spore.int64)
    return train_grad(params, tokens, tokens)


def main():
    params = make_params(97, 16, 32, 2)
    tokens = ops.arange(16).reshape(2, 8) % 97
    targets = (tokens * 7 + 3) % 97
    loss, grads = spore.value_and_grad(loss_fn)(params, tokens, targets, 2, 4)
    print(len(grads), grads[0].shape, loss.shape)
    # cross-entropy of near-uniform predictions over 97 classes ~ log(97) = 4.57
    print(ops.abs(loss - 4.5747).item() < 0.05)
    return loss
# expect: 28 (97, 32) ()
# expect: True

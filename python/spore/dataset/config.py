"""spore.dataset.config: the data pipeline's global settings (MindSpore's
mindspore.dataset.config).

The seed decides every random choice of a pipeline built after it is set:
the order of shuffled sources and shuffle(), and the draws of random
transforms (RandomCrop, RandomHorizontalFlip).  Each random operation takes
its seed when it is created, from (global seed, what kind of operation it
is, where it sits in the pipeline), so two pipelines built the same way
after set_seed(s) give the same rows in the same order, and their n-th
passes agree too (each pass of a dataset mixes its epoch number into the
seeds).  Without set_seed every random operation draws a fresh seed from
the operating system, as MindSpore does.
"""
import os

__all__ = ["set_seed", "get_seed", "set_num_parallel_workers", "get_num_parallel_workers",
           "set_prefetch_size", "get_prefetch_size"]

_MASK64 = (1 << 64) - 1
_DEFAULT_SEED = 5489  # std::mt19937::default_seed, what MindSpore's get_seed() reports when unset

_seed = None
_num_parallel_workers = max(1, min(8, os.cpu_count() or 1))
_prefetch_size = 16


def set_seed(seed):
    """Sets the seed of the data pipeline's random operations: an int in
    [0, 2**32 - 1].  Pipelines built afterwards are reproducible."""
    global _seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"set_seed: seed must be an int, not {type(seed).__name__}")
    if not 0 <= seed <= 0xFFFFFFFF:
        raise ValueError(f"set_seed: seed {seed} is not in [0, 2**32 - 1]")
    _seed = seed


def get_seed():
    """The seed set by set_seed, or MindSpore's default 5489 when none was set
    (the pipeline then draws random seeds)."""
    return _DEFAULT_SEED if _seed is None else _seed


def set_num_parallel_workers(num):
    """Default number of worker threads of map operations."""
    global _num_parallel_workers
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= 256:
        raise ValueError(f"set_num_parallel_workers: {num!r} is not an int in [1, 256]")
    _num_parallel_workers = num


def get_num_parallel_workers():
    return _num_parallel_workers


def set_prefetch_size(size):
    """Rows (batches, after batch()) the pipeline reads ahead of the consumer."""
    global _prefetch_size
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= (1 << 20):
        raise ValueError(f"set_prefetch_size: {size!r} is not an int in [1, 2**20]")
    _prefetch_size = size


def get_prefetch_size():
    return _prefetch_size


def _mix(*parts):
    """A 64-bit hash of ints (splitmix64 steps): unrelated seeds for nearby inputs."""
    z = 0x243F6A8885A308D3
    for p in parts:
        z = (z + 0x9E3779B97F4A7C15 * ((p & _MASK64) + 1)) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
    return z


def _op_seed(kind, depth):
    """The seed of a random operation of `kind` (a small int) at `depth` in
    its pipeline: fixed by set_seed, else fresh from the OS."""
    if _seed is None:
        return int.from_bytes(os.urandom(8), "little")
    return _mix(_seed, kind, depth)

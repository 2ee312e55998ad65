"""The optimization passes keep the meaning of every program.

Each program of tests/programs (errors/ and grad/ included, at any depth)
runs twice: plainly, and with `--passes` set to the whole optimization
pipeline, run to a fixed point before the VM starts.  Standard output,
standard error and the exit status must be identical: the passes may
change how a result is computed, never what it is, what is printed in what
order, or which error is reported where (copied nodes keep their source
locations, so even carets stay put).

The binary is $SPORE_BIN, by default build/spore in the repository.
"""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAMS = os.path.join(ROOT, "tests", "programs")
SPORE = os.environ.get("SPORE_BIN", os.path.join(ROOT, "build", "spore"))
TIMEOUT = 300
PIPELINE = ["inline", "beta", "switch_const", "tuple_simplify", "cse", "fold", "algebra", "dce"]
# Gradient expansion first (src/ad/expand.c), then the optimizer and the
# removal of the env/tuple plumbing the expansion leaves.
GRAD_PIPELINE = ["expand_grad"] + PIPELINE + ["env_simplify"]


def corpus():
    out = []
    for dirpath, _, files in os.walk(PROGRAMS):
        for f in files:
            if f.endswith(".py"):
                out.append(os.path.relpath(os.path.join(dirpath, f), PROGRAMS))
    return sorted(out)


def spore(*args):
    if not os.path.exists(SPORE):
        pytest.skip(f"{SPORE} is not built (set SPORE_BIN)")
    env = dict(os.environ, SPORE_NUM_THREADS=os.environ.get("SPORE_NUM_THREADS", "2"))
    return subprocess.run([SPORE, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env)


def pipeline():
    return ",".join(PIPELINE)


def test_pipeline_known():
    for p in GRAD_PIPELINE:
        r = spore("ir", "--passes", p, os.path.join(PROGRAMS, "arith_int.py"))
        assert r.returncode == 0 and "unknown pass" not in r.stderr, f"pass {p}: {r.stderr}"
    r = spore("ir", "--passes", "inline,nosuchpass", os.path.join(PROGRAMS, "arith_int.py"))
    assert r.returncode == 1 and "unknown pass 'nosuchpass'" in r.stderr


@pytest.mark.parametrize("name", corpus())
def test_program_with_passes(name):
    path = os.path.join(PROGRAMS, name)
    plain = spore("run", path)
    opt = spore("run", "--passes", pipeline(), path)
    assert opt.returncode == plain.returncode, f"{name}: status {plain.returncode} plainly, {opt.returncode} with passes:\n{opt.stderr}"
    assert opt.stdout == plain.stdout, f"{name}: output differs with passes:\n--- plain\n{plain.stdout}--- passes\n{opt.stdout}"
    assert opt.stderr == plain.stderr, f"{name}: errors differ with passes:\n--- plain\n{plain.stderr}--- passes\n{opt.stderr}"


@pytest.mark.parametrize("name", [n for n in corpus() if not n.startswith("errors")])
def test_optimized_ir_round_trips(name):
    """The optimized IR is valid IR: it prints, parses back and prints the same."""
    r = spore("ir", "--roundtrip", "--passes", pipeline(), os.path.join(PROGRAMS, name))
    assert r.returncode == 0, f"{name}:\n{r.stderr}"


@pytest.mark.parametrize("name", corpus())
def test_program_with_grad_expansion(name):
    """Every program (the grad corpus above all) gives the same output when
    calls of spore.grad & co. are expanded at compile time."""
    path = os.path.join(PROGRAMS, name)
    plain = spore("run", path)
    opt = spore("run", "--passes", ",".join(GRAD_PIPELINE), path)
    assert opt.returncode == plain.returncode, f"{name}: status {plain.returncode} plainly, {opt.returncode} expanded:\n{opt.stderr}"
    assert opt.stdout == plain.stdout, f"{name}: output differs expanded:\n--- plain\n{plain.stdout}--- expanded\n{opt.stdout}"
    assert opt.stderr == plain.stderr, f"{name}: errors differ expanded:\n--- plain\n{plain.stderr}--- expanded\n{opt.stderr}"


@pytest.mark.parametrize("name", [n for n in corpus() if n.startswith("grad") and "errors" not in n])
def test_grad_expanded_ir_round_trips(name):
    r = spore("ir", "--roundtrip", "--passes", ",".join(GRAD_PIPELINE), os.path.join(PROGRAMS, name))
    assert r.returncode == 0, f"{name}:\n{r.stderr}"


def test_grad_expansion_removes_runtime_j():
    """grad of a function of primitive calls expands with no run-time J:
    the optimized IR of tests/programs/grad/basic.py-like code calls no
    builtin.J, j_primal or grad_call (the gradient API call is gone)."""
    src = os.path.join(ROOT, "tests", "compiler", "programs", "expand_prims.py")
    plain = spore("run", src)
    r = spore("ir", "--passes", ",".join(GRAD_PIPELINE), src)
    assert r.returncode == 0, r.stderr
    graph_main = r.stdout[r.stdout.index("graph @main"):]
    graph_main = graph_main[:graph_main.index("\n}")]
    for bad in ("builtin.J(", "builtin.j_primal", "builtin.grad_call", "builtin.env_", "builtin.make_closure",
                '"spore.grad"'):
        assert bad not in graph_main, f"{bad} left in main:\n{graph_main}"
    opt = spore("run", "--passes", ",".join(GRAD_PIPELINE), src)
    assert opt.stdout == plain.stdout and plain.returncode == 0

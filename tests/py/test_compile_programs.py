"""The graph compiler keeps the meaning of every program.

Each program of tests/programs (errors/ and grad/ included, at any depth)
runs twice: plainly on the VM, and with `--compile`, through the graph
compiler (src/compiler/compile.h: specialize, expand grad, optimize) for
main's signature.  Standard output, standard error and the exit status
must be identical: specialization may fold, unroll and replace calls by
primitives, never change what is printed, in what order, or which error
is reported where -- an error the specializer finds at compile time
carries the same message, file:line:col and caret as the VM's.

Then `spore ir --stage` on a few programs: the stages print, an unknown
stage is refused, --args gives an entry its signature, and --time prints
one line per stage.

The binary is $SPORE_BIN, by default build/spore in the repository.
"""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAMS = os.path.join(ROOT, "tests", "programs")
SPORE = os.environ.get("SPORE_BIN", os.path.join(ROOT, "build", "spore"))
TIMEOUT = 300

# Programs whose compiled run may differ from the plain one, with why
# (none now: the specializer checks the gradient API's inputs itself).
KNOWN_DIFFERENT = {}


def corpus():
    out = []
    for dirpath, _, files in os.walk(PROGRAMS):
        for f in files:
            if f.endswith(".py"):
                out.append(os.path.relpath(os.path.join(dirpath, f), PROGRAMS))
    return sorted(out)


def spore(*args, env_extra=None):
    if not os.path.exists(SPORE):
        pytest.skip(f"{SPORE} is not built (set SPORE_BIN)")
    env = dict(os.environ, SPORE_NUM_THREADS=os.environ.get("SPORE_NUM_THREADS", "2"))
    env.pop("SPORE_DUMP_IR", None)
    if env_extra:
        env.update(env_extra)
    return subprocess.run([SPORE, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env)


@pytest.mark.parametrize("name", corpus())
def test_program_compiled(name):
    if name in KNOWN_DIFFERENT:
        pytest.xfail(KNOWN_DIFFERENT[name])
    path = os.path.join(PROGRAMS, name)
    plain = spore("run", path)
    comp = spore("run", "--compile", path)
    assert comp.returncode == plain.returncode, f"{name}: status {plain.returncode} plainly, {comp.returncode} compiled:\n{comp.stderr}"
    assert comp.stdout == plain.stdout, f"{name}: output differs compiled:\n--- plain\n{plain.stdout}--- compiled\n{comp.stdout}"
    assert comp.stderr == plain.stderr, f"{name}: errors differ compiled:\n--- plain\n{plain.stderr}--- compiled\n{comp.stderr}"


def test_stage_specialize_replaces_api_calls():
    r = spore("ir", "--stage", "specialize", os.path.join(PROGRAMS, "mlp.py"))
    assert r.returncode == 0, r.stderr
    assert "prim.matmul(" in r.stdout and "prim.softmax(" in r.stdout and "prim.relu(" in r.stdout
    # only the tensor literals stay calls (closures capture them; fold makes them constants)
    api = [l for l in r.stdout.splitlines() if "builtin.api" in l]
    assert api and all('"ops.tensor"' in l for l in api), api
    assert "builtin.matmul" not in r.stdout and "builtin.add" not in r.stdout
    # p.shape is a constant of the print
    assert "builtin.print((2, 2)," in r.stdout


def test_stage_optimize_and_time():
    r = spore("ir", "--stage", "optimize", "--time", os.path.join(PROGRAMS, "mlp.py"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("graph @") == 1  # forward and linear inlined into main
    stages = re.findall(r"^stage (\w+) +([0-9.]+) ms$", r.stderr, re.M)
    assert [s for s, _ in stages] == ["specialize", "expand_grad", "optimize", "fuse", "lower"]
    assert float(stages[0][1]) > 0


def test_stage_unknown():
    r = spore("ir", "--stage", "nosuch", os.path.join(PROGRAMS, "mlp.py"))
    assert r.returncode == 1 and "unknown stage 'nosuch'" in r.stderr


def test_stage_args(tmp_path):
    src = tmp_path / "f.py"
    src.write_text("def f(x, n):\n    for i in range(n):\n        x = x * 2.0\n    return x, x.shape[0] + n\n")
    r = spore("ir", str(src), "--entry", "f", "--stage", "optimize", "--args", "f32[5, 3], 2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("prim.mul(") == 2 and r.stdout.count("graph @") == 1
    assert "7)" in r.stdout  # x.shape[0] + n folded
    r = spore("ir", str(src), "--entry", "f", "--stage", "specialize", "--args", "f32[5, 3], 'x'")
    assert r.returncode == 1 and "f.py:2:" in r.stderr  # range('x'): a type error at the user's line


def test_dump_ir_env(tmp_path):
    d = tmp_path / "dump"
    r = spore("run", "--compile", os.path.join(PROGRAMS, "mlp.py"), env_extra={"SPORE_DUMP_IR": str(d)})
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(d))
    assert names == ["00_input.ir", "01_specialize.ir", "02_expand_grad.ir", "03_optimize.ir", "04_fuse.ir",
                     "05_lower.txt"]
    low = (d / "05_lower.txt").read_text()
    assert low.startswith("lowered @") or low.startswith("not lowered: "), low
    assert "prim.softmax(" in (d / "03_optimize.ir").read_text()

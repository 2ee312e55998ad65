"""The program corpus: every .py file of tests/programs run by `spore run`.

Each corpus file ends with its expected standard output as `# expect:`
lines (one per output line; `# expect:` alone is an empty line).  Each file
of tests/programs/errors must fail: exit status 1 (not a signal, not a
crash), and stderr holding every `# error:` substring the file lists --
they name file:line:col -- plus a caret line under the source line.  Every
corpus file must also survive `spore ir --roundtrip` (print -> parse ->
print gives identical text).

The binary is $SPORE_BIN, by default build/spore in the repository.
"""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAMS = os.path.join(ROOT, "tests", "programs")
ERRORS = os.path.join(PROGRAMS, "errors")
SPORE = os.environ.get("SPORE_BIN", os.path.join(ROOT, "build", "spore"))
TIMEOUT = 120


def corpus(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".py"))


def spore(*args):
    if not os.path.exists(SPORE):
        pytest.skip(f"{SPORE} is not built (set SPORE_BIN)")
    env = dict(os.environ, SPORE_NUM_THREADS=os.environ.get("SPORE_NUM_THREADS", "2"))
    return subprocess.run([SPORE, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env)


def expectations(path, tag):
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if line == f"# {tag}:":
                lines.append("")
            elif line.startswith(f"# {tag}: "):
                lines.append(line[len(f"# {tag}: "):])
    return lines


def test_corpus_is_there():
    assert len(corpus(PROGRAMS)) >= 20
    assert len(corpus(ERRORS)) >= 20
    for name in corpus(PROGRAMS):
        assert expectations(os.path.join(PROGRAMS, name), "expect"), f"{name} has no '# expect:' lines"
    for name in corpus(ERRORS):
        assert expectations(os.path.join(ERRORS, name), "error"), f"{name} has no '# error:' lines"


@pytest.mark.parametrize("name", corpus(PROGRAMS))
def test_program(name):
    path = os.path.join(PROGRAMS, name)
    r = spore("run", path)
    assert r.returncode == 0, f"{name} failed (status {r.returncode}):\n{r.stderr}"
    assert r.stdout.split("\n")[:-1] == expectations(path, "expect"), f"{name}: output differs:\n{r.stdout}"
    assert r.stdout.endswith("\n")


@pytest.mark.parametrize("name", corpus(ERRORS))
def test_error_program(name):
    path = os.path.join(ERRORS, name)
    r = spore("run", path)
    assert r.returncode == 1, f"{name}: status {r.returncode} (a negative status is a signal)\n{r.stderr}"
    for want in expectations(path, "error"):
        assert want in r.stderr, f"{name}: {want!r} not in:\n{r.stderr}"
    lines = r.stderr.split("\n")
    carets = [i for i, l in enumerate(lines) if re.fullmatch(r"[ \t]*\^", l)]
    assert carets and carets[0] >= 2, f"{name}: no source line with a caret under it:\n{r.stderr}"
    # the caret sits under the column the message names
    m = re.match(r".*?:(\d+):(\d+): ", lines[0])
    assert m, f"{name}: the message does not start with file:line:col:\n{r.stderr}"
    assert len(lines[carets[0]].expandtabs(1)) == int(m.group(2)), r.stderr


@pytest.mark.parametrize("name", corpus(PROGRAMS))
def test_ir_roundtrip(name):
    r = spore("ir", "--roundtrip", os.path.join(PROGRAMS, name))
    assert r.returncode == 0, f"{name}: {r.stderr}"
    assert r.stdout.startswith("global ") or "graph @" in r.stdout


def test_entry_and_threads():
    path = os.path.join(PROGRAMS, "functions.py")
    r = spore("run", path, "--entry", "is_even")
    assert r.returncode == 1 and "is_even() missing 1 required argument: 'n'" in r.stderr, r.stderr
    r = spore("run", os.path.join(PROGRAMS, "mlp.py"), "--threads", "1")
    assert r.returncode == 0 and r.stdout.split("\n")[:-1] == expectations(os.path.join(PROGRAMS, "mlp.py"), "expect")
    r = spore("run", path, "--entry", "nosuch")
    assert r.returncode == 1 and "no function 'nosuch'" in r.stderr
    r = spore("run", os.path.join(PROGRAMS, "no_such_file.py"))
    assert r.returncode == 1 and "no_such_file.py" in r.stderr
    r = spore("run", path, "--threads", "0")
    assert r.returncode == 2


def test_ir_entry():
    r = spore("ir", os.path.join(PROGRAMS, "closures.py"), "--entry", "outer")
    assert r.returncode == 0
    assert "graph @outer(" in r.stdout and "graph @outer.middle(" in r.stdout
    assert "graph @main(" not in r.stdout


def test_returned_none_prints_nothing(tmp_path):
    p = tmp_path / "none.py"
    p.write_text("def main():\n    print('only this')\n")
    r = spore("run", str(p))
    assert r.returncode == 0 and r.stdout == "only this\n"

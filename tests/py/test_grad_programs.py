"""The autodiff corpus: tests/programs/grad/*.py run by `spore run`.

Same conventions as test_programs.py (whose helpers this reuses): each
program ends with its expected output as `# expect:` lines and checks
gradients against analytic values (or prints them); each file of
tests/programs/grad/errors must fail with exit status 1, every `# error:`
substring in stderr (file:line:col of the user's line) and a caret line
under the column the message names.  Every program must also survive
`spore ir --roundtrip`.
"""
import os
import re

import pytest

from test_programs import ROOT, corpus, expectations, spore

GRAD = os.path.join(ROOT, "tests", "programs", "grad")
GRAD_ERRORS = os.path.join(GRAD, "errors")


def test_grad_corpus_is_there():
    assert len(corpus(GRAD)) >= 5
    assert len(corpus(GRAD_ERRORS)) >= 4
    for name in corpus(GRAD):
        assert expectations(os.path.join(GRAD, name), "expect"), f"{name} has no '# expect:' lines"
    for name in corpus(GRAD_ERRORS):
        assert expectations(os.path.join(GRAD_ERRORS, name), "error"), f"{name} has no '# error:' lines"


@pytest.mark.parametrize("name", corpus(GRAD))
def test_grad_program(name):
    path = os.path.join(GRAD, name)
    r = spore("run", path)
    assert r.returncode == 0, f"{name} failed (status {r.returncode}):\n{r.stderr}"
    assert r.stdout.split("\n")[:-1] == expectations(path, "expect"), f"{name}: output differs:\n{r.stdout}"


@pytest.mark.parametrize("name", corpus(GRAD_ERRORS))
def test_grad_error_program(name):
    path = os.path.join(GRAD_ERRORS, name)
    r = spore("run", path)
    assert r.returncode == 1, f"{name}: status {r.returncode} (a negative status is a signal)\n{r.stderr}"
    for want in expectations(path, "error"):
        assert want in r.stderr, f"{name}: {want!r} not in:\n{r.stderr}"
    lines = r.stderr.split("\n")
    carets = [i for i, l in enumerate(lines) if re.fullmatch(r"[ \t]*\^", l)]
    assert carets and carets[0] >= 2, f"{name}: no source line with a caret under it:\n{r.stderr}"
    m = re.match(r".*?:(\d+):(\d+): ", lines[0])
    assert m, f"{name}: the message does not start with file:line:col:\n{r.stderr}"
    assert len(lines[carets[0]].expandtabs(1)) == int(m.group(2)), r.stderr


@pytest.mark.parametrize("name", corpus(GRAD))
def test_grad_ir_roundtrip(name):
    r = spore("ir", "--roundtrip", os.path.join(GRAD, name))
    assert r.returncode == 0, f"{name}: {r.stderr}"

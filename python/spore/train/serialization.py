"""Checkpoints: save_checkpoint, load_checkpoint, load_param_into_net
(MindSpore 2.x's names, arguments and rules).

A checkpoint is a safetensors file (Spore's C writer and parser,
src/io/safetensors.c), so the `safetensors` package and other frameworks
read what Spore writes and the other way round.  The file holds one tensor
per parameter, keyed by the Parameter's name ("fc1.weight",
"moments.fc1.weight", "global_step"); append_dict's numbers become tensors
beside them, its strings metadata entries "spore.str.<key>".  A
Cell's checkpoint holds all its parameters, trainable or not, so a
TrainOneStepCell's checkpoint carries the optimizer's state too and
training resumes exactly where it stopped.

Saving is atomic (a temporary file, fsync, rename): a save that fails for
any reason leaves the file that was there untouched.  Loading parses
strictly and fails with a ValueError naming the file and the problem;
it never crashes on a damaged file.

Loading into a network writes the values into the existing Parameters'
memory: a Parameter's identity never changes (compiled graphs and
optimizers hold it), and nothing is written until every parameter has
been checked, so a shape or dtype mismatch leaves the network as it was.

Deviations from MindSpore: no encryption (enc_key/dec_key raise
NotImplementedError), any file suffix loads, the prefix matching of a
non-strict load only strips whole dotted components.
"""
import os
import threading

from spore import _C
from spore.common import dtype as mstype
from spore.common.tensor import Tensor, Parameter

__all__ = ["save_checkpoint", "load_checkpoint", "load_param_into_net", "async_ckpt_thread_status"]

_STR_PREFIX = "spore.str."
_FLOATS = (mstype.float16, mstype.float32, mstype.float64, mstype.bfloat16)
_INTS = (mstype.int8, mstype.int32, mstype.int64)

# the one async save in flight: (thread, [exception or None], path)
_async = {"thread": None, "error": None, "path": None}


def _wait_async():
    """Waits for the async save in flight (if any) and re-raises its error,
    so a failed background save is never lost."""
    t = _async["thread"]
    if t is not None:
        t.join()
        _async["thread"] = None
        err, _async["error"] = _async["error"], None
        if err is not None:
            raise err


def async_ckpt_thread_status():
    """True while an asynchronous save_checkpoint is still writing."""
    t = _async["thread"]
    return t is not None and t.is_alive()


def _check_path(name, fn):
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise TypeError(f"For '{fn}', the argument 'ckpt_file_name' must be a str, "
                        f"but got {type(name).__name__}.")
    return name


def _entries_of(save_obj, choice_func):
    """The (name, Tensor) pairs and the string entries of save_obj, in
    order, names unique."""
    from spore.nn.cell import Cell
    pairs, strings = [], {}
    if isinstance(save_obj, Cell):
        items = [(p.name or path, p) for path, p in save_obj.parameters_and_names()]
    elif isinstance(save_obj, dict):
        items = list(save_obj.items())
    elif isinstance(save_obj, (list, tuple)):
        items = []
        for e in save_obj:
            if isinstance(e, Parameter):
                items.append((e.name, e))
            elif isinstance(e, dict) and "name" in e and "data" in e:
                items.append((e["name"], e["data"]))
            else:
                raise TypeError("For 'save_checkpoint', the elements of a list 'save_obj' must be Parameters or "
                                f"dicts {{'name': str, 'data': Tensor}}, but got {type(e).__name__}.")
    else:
        raise TypeError("For 'save_checkpoint', the argument 'save_obj' must be a Cell, list or dict, "
                        f"but got {type(save_obj).__name__}.")
    seen = set()
    for name, value in items:
        if not isinstance(name, str) or not name:
            raise TypeError(f"For 'save_checkpoint', a parameter name must be a non-empty str, not {name!r}.")
        if choice_func is not None and not choice_func(name):
            continue
        if name in seen:
            # (one Parameter reached by two paths is listed once by parameters_and_names)
            raise ValueError(f"For 'save_checkpoint', the name '{name}' appears twice: two different "
                             "parameters with one name cannot both be saved or loaded back.")
        seen.add(name)
        if isinstance(value, str):
            strings[name] = value
        elif isinstance(value, _C.TensorBase):
            pairs.append((name, value))
        else:
            raise TypeError(f"For 'save_checkpoint', the data of '{name}' must be a Tensor or Parameter, "
                            f"but got {type(value).__name__}.")
    return pairs, strings


def _append_entries(append_dict, pairs, strings):
    if append_dict is None:
        return
    if not isinstance(append_dict, dict):
        raise TypeError(f"For 'save_checkpoint', 'append_dict' must be a dict, not {type(append_dict).__name__}.")
    taken = {n for n, _ in pairs} | set(strings)
    for k, v in append_dict.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"For 'save_checkpoint', the keys of 'append_dict' must be non-empty str, not {k!r}.")
        if k in taken:
            raise ValueError(f"For 'save_checkpoint', the 'append_dict' key '{k}' is also a parameter's name.")
        taken.add(k)
        if isinstance(v, bool):
            pairs.append((k, Tensor(v, mstype.bool_)))
        elif isinstance(v, int):
            pairs.append((k, Tensor(v, mstype.int64)))
        elif isinstance(v, float):
            pairs.append((k, Tensor(v, mstype.float32)))
        elif isinstance(v, str):
            strings[k] = v
        elif isinstance(v, _C.TensorBase):
            pairs.append((k, v))
        else:
            raise TypeError(f"For 'save_checkpoint', the value of 'append_dict' key '{k}' must be an int, float, "
                            f"bool, str, Tensor or Parameter, but got {type(v).__name__}.")


def save_checkpoint(save_obj, ckpt_file_name, integrated_save=True, async_save=False, append_dict=None,
                    enc_key=None, enc_mode="AES-GCM", choice_func=None, crc_check=False, format="ckpt",
                    **kwargs):
    """Saves a Cell's parameters (all of them: trainable, BatchNorm's moving
    statistics, an optimizer's state), a list of Parameters or
    {"name": str, "data": Tensor} dicts, or a dict name -> Tensor, to
    ``ckpt_file_name`` (".ckpt" appended when missing; ".safetensors" with
    format="safetensors"; the bytes are safetensors either way).

    append_dict: extra entries (int -> int64 tensor, float -> float32,
    bool, Tensor, or str kept as metadata).  choice_func(name) -> bool picks
    the parameters to save.  async_save snapshots the values now and writes
    them in a background thread; the next save or load waits for it.
    An existing file is replaced atomically: if the save fails it stays as
    it was."""
    ckpt_file_name = _check_path(ckpt_file_name, "save_checkpoint")
    if not isinstance(integrated_save, bool):
        raise TypeError(f"For 'save_checkpoint', 'integrated_save' must be a bool, "
                        f"not {type(integrated_save).__name__}.")
    if not isinstance(async_save, (bool, str)) or (isinstance(async_save, str)
                                                   and async_save not in ("thread", "process")):
        raise TypeError("For 'save_checkpoint', 'async_save' must be a bool, 'thread' or 'process', "
                        f"not {async_save!r}.")
    if enc_key is not None:
        raise NotImplementedError("save_checkpoint: encrypted checkpoints (enc_key) are not supported by Spore")
    if choice_func is not None and not callable(choice_func):
        raise TypeError("For 'save_checkpoint', 'choice_func' must be a function or None.")
    if format not in ("ckpt", "safetensors"):
        raise ValueError(f"For 'save_checkpoint', 'format' must be 'ckpt' or 'safetensors', not {format!r}.")
    suffix = "." + format
    ckpt_file_name = os.path.abspath(ckpt_file_name)
    if os.path.isdir(ckpt_file_name):
        raise IsADirectoryError(f"For 'save_checkpoint', the parameter 'ckpt_file_name': {ckpt_file_name} is a "
                                "directory, it must be a file name.")
    if not ckpt_file_name.endswith(suffix):
        ckpt_file_name += suffix

    pairs, strings = _entries_of(save_obj, choice_func)
    _append_entries(append_dict, pairs, strings)
    meta = {"framework": "spore", "spore.version": _C.version()}
    for k, v in strings.items():
        meta[_STR_PREFIX + k] = v
    names = [n for n, _ in pairs]

    _wait_async()
    if not async_save:
        _C.ckpt_save(ckpt_file_name, names, [t for _, t in pairs], meta)
        return
    # a snapshot now: training may update the parameters in place while the thread writes
    snap = [_C.ckpt_copy(t) for _, t in pairs]

    def write():
        try:
            _C.ckpt_save(ckpt_file_name, names, snap, meta)
        except BaseException as e:  # handed to the next save/load (_wait_async)
            _async["error"] = e

    t = threading.Thread(target=write, name="spore-async-ckpt", daemon=False)
    _async.update(thread=t, error=None, path=ckpt_file_name)
    t.start()


def _prefixes(value, arg):
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(p, str) for p in items):
        raise TypeError(f"For 'load_checkpoint', '{arg}' must be a str or a list/tuple of str, "
                        f"but got {type(value).__name__}.")
    if any(p == "" for p in items):
        raise ValueError(f"For 'load_checkpoint', '{arg}' must not contain an empty string.")
    return tuple(items)


def load_checkpoint(ckpt_file_name, net=None, strict_load=False, filter_prefix=None, dec_key=None,
                    dec_mode="AES-GCM", specify_prefix=None, choice_func=None, crc_check=False,
                    remove_redundancy=False, format="ckpt"):
    """Reads a checkpoint into a dict name -> Parameter (strings saved through
    append_dict come back as str), and loads it into ``net`` when given
    (load_param_into_net with strict_load).

    filter_prefix: names starting with it (a str or a list of them) are
    skipped; specify_prefix: only names starting with it are read; when
    neither is given, choice_func(name) -> bool picks the names.  A missing,
    damaged or truncated file, or one that is not a checkpoint, is a
    ValueError naming the file and the problem; so is a checkpoint from
    which nothing is left after the filters."""
    ckpt_file_name = _check_path(ckpt_file_name, "load_checkpoint")
    if dec_key is not None:
        raise NotImplementedError("load_checkpoint: encrypted checkpoints (dec_key) are not supported by Spore")
    if not isinstance(strict_load, bool):
        raise TypeError(f"For 'load_checkpoint', 'strict_load' must be a bool, not {type(strict_load).__name__}.")
    filters = _prefixes(filter_prefix, "filter_prefix")
    specify = _prefixes(specify_prefix, "specify_prefix")
    if choice_func is not None and not callable(choice_func):
        raise TypeError("For 'load_checkpoint', 'choice_func' must be a function or None.")
    if filters or specify:
        choice_func = None  # MindSpore: the prefixes override choice_func
    path = os.path.abspath(ckpt_file_name)
    if _async["thread"] is not None and _async["path"] == path:
        _wait_async()
    if not os.path.exists(path):
        raise ValueError(f"For 'load_checkpoint', the checkpoint file: {path} does not exist, please check "
                         "whether the 'ckpt_file_name' is correct.")
    try:
        entries, meta = _C.ckpt_load(path)
    except (OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"Failed to read the checkpoint file {path}: {e}") from None

    def wanted(name):
        if filters and name.startswith(filters):
            return False
        if specify and not name.startswith(specify):
            return False
        return choice_func is None or bool(choice_func(name))

    parameter_dict = {}
    for name, t in entries:
        if wanted(name):
            parameter_dict[name] = Parameter(t, name=name)
    for k, v in meta.items():
        if k.startswith(_STR_PREFIX) and wanted(k[len(_STR_PREFIX):]):
            parameter_dict[k[len(_STR_PREFIX):]] = v
    if not parameter_dict:
        raise ValueError(f"The loaded parameter dict of {path} is empty after filter or specify, please check "
                         "whether 'filter_prefix', 'specify_prefix' or 'choice_func' are set correctly.")
    if net is not None:
        load_param_into_net(net, parameter_dict, strict_load)
    return parameter_dict


def _convertible(a, b, strict_load):
    """MindSpore's rule: a non-strict load converts float <-> float and
    int <-> int; everything else must match exactly."""
    return not strict_load and ({a, b} <= set(_FLOATS) or {a, b} <= set(_INTS))


def _check_pair(param, name, new):
    """The error for loading `new` into `param`, or None."""
    if isinstance(new, str):
        return TypeError(f"For 'load_param_into_net', '{name}' in 'parameter_dict' is a str, it cannot be "
                         "loaded into a Parameter.")
    if tuple(param.shape) != tuple(new.shape):
        return RuntimeError(f"For 'load_param_into_net', {name} in the argument 'net' should have the same shape "
                            f"as {name} in the argument 'parameter_dict'. But got its shape {tuple(param.shape)} in "
                            f"the argument 'net' and shape {tuple(new.shape)} in the argument 'parameter_dict'.")
    return None


def load_param_into_net(net, parameter_dict, strict_load=False, remove_redundancy=False):
    """Loads ``parameter_dict`` (name -> Parameter/Tensor, e.g. from
    load_checkpoint) into the Parameters of ``net`` in place, matching by
    Parameter name.  Returns (param_not_load, ckpt_not_load): the names of
    the network's parameters that got no value, and the names of the
    dict's entries that were not used.

    Shapes must agree (RuntimeError naming the parameter).  dtypes must
    agree, except that without strict_load a float value converts to
    another float dtype and an int to another int dtype.  Without
    strict_load, a parameter the dict lacks is also looked up under a
    common dotted prefix (a checkpoint of a wrapper cell loaded into the
    bare network).  Every pair is checked before any value is written."""
    from spore.nn.cell import Cell
    if not isinstance(net, Cell):
        raise TypeError(f"For 'load_param_into_net', the argument 'net' should be a Cell, but got "
                        f"{type(net).__name__}.")
    if not isinstance(parameter_dict, dict):
        raise TypeError(f"For 'load_param_into_net', the argument 'parameter_dict' should be a dict, but got "
                        f"{type(parameter_dict).__name__}.")
    if not isinstance(strict_load, bool):
        raise TypeError(f"For 'load_param_into_net', 'strict_load' must be a bool, not "
                        f"{type(strict_load).__name__}.")
    for k, v in parameter_dict.items():
        if not isinstance(k, str) or not isinstance(v, (_C.TensorBase, str)):
            raise TypeError("For 'load_param_into_net', the element in the argument 'parameter_dict' should be "
                            f"a 'str' key and a 'Parameter' value, but got {type(k).__name__} -> "
                            f"{type(v).__name__}.")

    params = []
    for path, p in net.parameters_and_names():
        name = p.name or path
        params.append((name, p))
    plan, used, param_not_load = [], set(), []
    for name, p in params:
        if name in parameter_dict:
            plan.append((name, p, parameter_dict[name]))
            used.add(name)
        else:
            param_not_load.append(name)

    if param_not_load and not strict_load:
        # a checkpoint saved from a cell that wraps this one: "<prefix>.<name>"
        tried = set()
        while param_not_load:
            prefix = None
            for name in param_not_load:
                for key in parameter_dict:
                    if key not in used and key.endswith("." + name):
                        cand = key[:-len(name)]
                        if cand not in tried:
                            prefix = cand
                            break
                if prefix is not None:
                    break
            if prefix is None:
                break
            tried.add(prefix)
            still = []
            for name, p in params:
                if name not in param_not_load:
                    continue
                key = prefix + name
                if key in parameter_dict and key not in used:
                    plan.append((name, p, parameter_dict[key]))
                    used.add(key)
                else:
                    still.append(name)
            param_not_load = still

    # check everything first: a failed load writes nothing
    work = []
    for name, p, new in plan:
        err = _check_pair(p, name, new)
        if err is not None:
            raise err
        if p.dtype != new.dtype and not _convertible(p.dtype, new.dtype, strict_load):
            raise RuntimeError(f"For 'load_param_into_net', {name} in the argument 'net' should have the same type "
                               f"as {name} in the argument 'parameter_dict'. but got its type {p.dtype} in the "
                               f"argument 'net' and type {new.dtype} in the argument 'parameter_dict'.")
        work.append((p, new))
    for p, new in work:
        _C.ckpt_copy_into(p, new)
    ckpt_not_load = [k for k in parameter_dict if k not in used]
    return param_not_load, ckpt_not_load

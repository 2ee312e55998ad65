"""spore.train callbacks: hooks Model.train / Model.eval call (MindSpore 2.x).

A Callback is an object with one method per point of a run:

    on_train_begin  on_train_epoch_begin  on_train_step_begin
                    on_train_step_end     on_train_epoch_end   on_train_end
    on_eval_begin   on_eval_epoch_begin   on_eval_step_begin
                    on_eval_step_end      on_eval_epoch_end    on_eval_end

each taking a RunContext.  As in MindSpore 2.x, the on_train_* and
on_eval_* hooks call the 1.x names (begin, epoch_begin, step_begin,
step_end, epoch_end, end) by default, so a callback written for either
generation works.  ``run_context.original_args()`` is the run's parameter
record (cb_params): cur_epoch_num, cur_step_num (counted from the start of
training, across epochs), batch_num (steps per epoch), epoch_num,
net_outputs (what the train network returned this step: the loss),
train_network, optimizer, mode ('train' or 'eval'), ...  A callback may add
its own fields; ``run_context.request_stop()`` ends training after the
current step.

The monitors print through ``_emit``, which first wipes the progress bar's
line when one is drawn, so a LossMonitor line never lands in the middle of
the bar.  The progress bar (``_ProgressBar``) is Model.train's own: drawn
only when stdout is a terminal, redrawn at most ten times a second, and
it reads the loss tensor only when it redraws -- a loss read is the one
thing a callback does per step that costs a device sync, so LossMonitor too
reads it only on the steps it prints.

ModelCheckpoint writes ``<prefix>-<epoch>_<step-in-epoch>.ckpt`` files with
spore.save_checkpoint (safetensors inside, MindSpore's names outside),
renames the prefix to ``<prefix>_<n>`` when the folder already holds
files of that prefix (MindSpore's rule, so runs never overwrite each
other), and keeps at most keep_checkpoint_max of its own files.
"""
import os
import sys
import time

__all__ = ["Callback", "RunContext", "LossMonitor", "TimeMonitor", "ModelCheckpoint", "CheckpointConfig",
           "History", "LambdaCallback", "EarlyStopping"]


# --------------------------------------------------------------------------
# printing beside a progress bar
_bar_state = {"drawn": False}


def _emit(text):
    """print(text), clearing a drawn progress bar line first."""
    if _bar_state["drawn"]:
        sys.stdout.write("\r\033[K")
        _bar_state["drawn"] = False
    print(text, flush=True)


def _loss_value(outputs):
    """The loss as a Python float from a train network's outputs (a Tensor,
    or a tuple whose first Tensor is the loss); None when there is none."""
    from spore.common.tensor import Tensor
    if isinstance(outputs, (tuple, list)):
        outputs = next((o for o in outputs if isinstance(o, Tensor)), None)
    if isinstance(outputs, Tensor):
        return float(outputs.item() if outputs.ndim == 0 else outputs.mean().item())
    if isinstance(outputs, (int, float)):
        return float(outputs)
    return None


class _Params(dict):
    """cb_params: a dict whose keys are also attributes (MindSpore's
    _InternalCallbackParam)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value


class RunContext:
    """Holds a run's parameter record and its stop flag; given to every hook."""

    def __init__(self, original_args):
        if not isinstance(original_args, dict):
            raise TypeError(f"RunContext takes a dict, not {type(original_args).__name__}")
        self._original_args = original_args
        self._stop_requested = False

    def original_args(self):
        """The run's parameter record (cb_params)."""
        return self._original_args

    def request_stop(self):
        """Ask the run to stop after the current step."""
        self._stop_requested = True

    def get_stop_requested(self):
        return self._stop_requested


class Callback:
    """Base class of callbacks: override the hooks you need."""

    def begin(self, run_context):
        """Called once before the run (train or eval)."""

    def epoch_begin(self, run_context):
        """Called before each epoch."""

    def epoch_end(self, run_context):
        """Called after each epoch."""

    def step_begin(self, run_context):
        """Called before each step."""

    def step_end(self, run_context):
        """Called after each step."""

    def end(self, run_context):
        """Called once after the run."""

    def on_train_begin(self, run_context):
        self.begin(run_context)

    def on_train_epoch_begin(self, run_context):
        self.epoch_begin(run_context)

    def on_train_epoch_end(self, run_context):
        self.epoch_end(run_context)

    def on_train_step_begin(self, run_context):
        self.step_begin(run_context)

    def on_train_step_end(self, run_context):
        self.step_end(run_context)

    def on_train_end(self, run_context):
        self.end(run_context)

    def on_eval_begin(self, run_context):
        self.begin(run_context)

    def on_eval_epoch_begin(self, run_context):
        self.epoch_begin(run_context)

    def on_eval_epoch_end(self, run_context):
        self.epoch_end(run_context)

    def on_eval_step_begin(self, run_context):
        self.step_begin(run_context)

    def on_eval_step_end(self, run_context):
        self.step_end(run_context)

    def on_eval_end(self, run_context):
        self.end(run_context)

    def __enter__(self):
        return self

    def __exit__(self, *err):
        return False


class _CallbackList:
    """The callbacks of one run, called in order."""

    def __init__(self, callbacks):
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif isinstance(callbacks, (list, tuple)):
            callbacks = list(callbacks)
        else:
            raise TypeError(f"callbacks must be a Callback or a list of Callbacks, not {type(callbacks).__name__}")
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, not {type(cb).__name__}")
        self.callbacks = callbacks

    def __call__(self, hook, run_context):
        for cb in self.callbacks:
            getattr(cb, hook)(run_context)


# --------------------------------------------------------------------------
class LossMonitor(Callback):
    """Prints ``epoch: E step: S, loss is L`` every per_print_times steps
    (0: never), and the eval metrics at the end of an epoch of Model.fit.
    A NaN or infinite loss stops the run with ValueError."""

    def __init__(self, per_print_times=1):
        super().__init__()
        if isinstance(per_print_times, bool) or not isinstance(per_print_times, int) or per_print_times < 0:
            raise ValueError(f"LossMonitor: per_print_times must be an int >= 0, not {per_print_times!r}")
        self._per_print_times = per_print_times
        self._last_print_time = 0

    def on_train_begin(self, run_context):
        self._last_print_time = run_context.original_args().get("cur_step_num", 0)

    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        if self._per_print_times == 0 or cb.cur_step_num - self._last_print_time < self._per_print_times:
            return
        self._last_print_time = cb.cur_step_num
        step_in_epoch = (cb.cur_step_num - 1) % max(cb.batch_num, 1) + 1
        loss = _loss_value(cb.net_outputs)
        if loss is not None and (loss != loss or loss in (float("inf"), float("-inf"))):
            raise ValueError(f"epoch: {cb.cur_epoch_num} step: {step_in_epoch}. Invalid loss {loss}, "
                             f"terminating training.")
        _emit(f"epoch: {cb.cur_epoch_num} step: {step_in_epoch}, loss is {loss}")

    def on_train_epoch_end(self, run_context):
        metrics = run_context.original_args().get("metrics")
        if metrics:
            _emit(f"Eval result: epoch {run_context.original_args().cur_epoch_num}, metrics: {metrics}")


class TimeMonitor(Callback):
    """Prints each epoch's time and time per step (data_size steps an epoch;
    None: the dataset's size)."""

    def __init__(self, data_size=None, data_time=False):
        super().__init__()
        if data_size is not None and (isinstance(data_size, bool) or not isinstance(data_size, int) or data_size <= 0):
            raise ValueError(f"TimeMonitor: data_size must be a positive int or None, not {data_size!r}")
        self.data_size = data_size
        self.data_time = data_time
        self.epoch_time = 0.0
        self._data_time_sum = 0.0
        self._step_end_time = None

    def on_train_epoch_begin(self, run_context):
        self.epoch_time = time.perf_counter()
        self._data_time_sum = 0.0
        self._step_end_time = self.epoch_time

    def on_train_step_begin(self, run_context):
        if self.data_time and self._step_end_time is not None:
            self._data_time_sum += time.perf_counter() - self._step_end_time

    def on_train_step_end(self, run_context):
        self._step_end_time = time.perf_counter()

    def on_train_epoch_end(self, run_context):
        # up to the last step's end: Model.fit's evaluation, which runs
        # before this hook so that the metrics are there, is not training time
        ms = (self._step_end_time - self.epoch_time) * 1000.0
        cb = run_context.original_args()
        steps = self.data_size or cb.get("batch_num") or 1
        _emit(f"epoch time: {ms:.3f} ms, per step time: {ms / steps:.3f} ms")
        if self.data_time:
            _emit(f"data time: {self._data_time_sum * 1000.0:.3f} ms")


class History(Callback):
    """Records each epoch's last loss (``epoch`` and ``history['net_output']``)
    and Model.fit's eval metrics (``history[name]``)."""

    def __init__(self):
        super().__init__()
        self.epoch = []
        self.history = {}

    def on_train_begin(self, run_context):
        self.epoch = []
        self.history = {}

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        self.epoch.append(cb.cur_epoch_num)
        loss = _loss_value(cb.get("net_outputs"))
        if loss is not None:
            self.history.setdefault("net_output", []).append(loss)
        for k, v in (cb.get("metrics") or {}).items():
            self.history.setdefault(k, []).append(v)


class LambdaCallback(Callback):
    """A callback from functions: LambdaCallback(on_train_epoch_end=fn, ...)."""

    _HOOKS = ("on_train_begin", "on_train_epoch_begin", "on_train_step_begin", "on_train_step_end",
              "on_train_epoch_end", "on_train_end", "on_eval_begin", "on_eval_epoch_begin",
              "on_eval_step_begin", "on_eval_step_end", "on_eval_epoch_end", "on_eval_end")

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if name not in self._HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            if fn is not None:
                setattr(self, name, fn)


class EarlyStopping(Callback):
    """Stops Model.fit when the monitored eval metric ('eval_loss' or a metric
    name) has not improved by min_delta for patience evaluations."""

    def __init__(self, monitor="eval_loss", min_delta=0, patience=0, verbose=False, mode="auto",
                 baseline=None, restore_best_weights=False):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', not {mode!r}")
        self.monitor, self.patience, self.verbose, self.baseline = monitor, patience, verbose, baseline
        self.min_delta = abs(min_delta)
        self._lower_is_better = mode == "min" or (mode == "auto" and "acc" not in monitor)
        self.wait, self.stopped_epoch, self.best = 0, 0, None

    def on_train_begin(self, run_context):
        self.wait, self.stopped_epoch, self.best = 0, 0, self.baseline

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        metrics = cb.get("metrics") or {}
        key = "loss" if self.monitor == "eval_loss" and "eval_loss" not in metrics else self.monitor
        if key not in metrics:
            return
        cur = metrics[key]
        better = self.best is None or (cur < self.best - self.min_delta if self._lower_is_better
                                       else cur > self.best + self.min_delta)
        if better:
            self.best, self.wait = cur, 0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = cb.cur_epoch_num
            run_context.request_stop()
            if self.verbose:
                _emit(f"Epoch {cb.cur_epoch_num}: early stopping")


# --------------------------------------------------------------------------
class CheckpointConfig:
    """When ModelCheckpoint saves and how many files it keeps.

    save_checkpoint_steps / save_checkpoint_seconds: save every n steps, or
    (when steps is None or 0) every n seconds.  keep_checkpoint_max: keep
    the newest n files; keep_checkpoint_per_n_minutes (when max is None or
    0): keep one file per n minutes.  append_info: a list of 'epoch_num',
    'step_num' and/or a dict of name -> number, saved beside the weights.
    """

    def __init__(self, save_checkpoint_steps=1, save_checkpoint_seconds=0, keep_checkpoint_max=5,
                 keep_checkpoint_per_n_minutes=0, integrated_save=True, async_save=False, saved_network=None,
                 append_info=None, enc_key=None, enc_mode="AES-GCM", exception_save=False, **kwargs):
        def nonneg(name, v):
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"CheckpointConfig: {name} must be a number >= 0 or None, not {v!r}")
            return v
        self._save_checkpoint_steps = nonneg("save_checkpoint_steps", save_checkpoint_steps)
        self._save_checkpoint_seconds = nonneg("save_checkpoint_seconds", save_checkpoint_seconds)
        if self._save_checkpoint_steps:
            self._save_checkpoint_seconds = None
        self._keep_checkpoint_max = nonneg("keep_checkpoint_max", keep_checkpoint_max)
        self._keep_checkpoint_per_n_minutes = nonneg("keep_checkpoint_per_n_minutes", keep_checkpoint_per_n_minutes)
        if self._keep_checkpoint_max:
            self._keep_checkpoint_per_n_minutes = None
        elif not self._keep_checkpoint_per_n_minutes:
            self._keep_checkpoint_max = 1
        if not self._save_checkpoint_steps and not self._save_checkpoint_seconds:
            raise ValueError("CheckpointConfig: save_checkpoint_steps and save_checkpoint_seconds can't both be "
                             "None or 0")
        if enc_key is not None:
            raise ValueError("CheckpointConfig: encrypted checkpoints (enc_key) are not supported by Spore")
        self._integrated_save = integrated_save
        self._async_save = async_save
        self._saved_network = saved_network
        self._append_info = self._check_append_info(append_info)
        self._enc_key, self._enc_mode = enc_key, enc_mode
        self._exception_save = exception_save

    @staticmethod
    def _check_append_info(info):
        if info is None:
            return None
        if not isinstance(info, list):
            raise TypeError(f"CheckpointConfig: append_info must be a list, not {type(info).__name__}")
        for item in info:
            if isinstance(item, str):
                if item not in ("epoch_num", "step_num"):
                    raise ValueError(f"CheckpointConfig: append_info strings are 'epoch_num' and 'step_num', "
                                     f"not {item!r}")
            elif isinstance(item, dict):
                for k, v in item.items():
                    if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise TypeError(f"CheckpointConfig: append_info dicts map names to numbers ({k!r})")
            else:
                raise TypeError(f"CheckpointConfig: append_info holds strings and dicts, not {type(item).__name__}")
        return info

    save_checkpoint_steps = property(lambda self: self._save_checkpoint_steps)
    save_checkpoint_seconds = property(lambda self: self._save_checkpoint_seconds)
    keep_checkpoint_max = property(lambda self: self._keep_checkpoint_max)
    keep_checkpoint_per_n_minutes = property(lambda self: self._keep_checkpoint_per_n_minutes)
    integrated_save = property(lambda self: self._integrated_save)
    async_save = property(lambda self: self._async_save)
    saved_network = property(lambda self: self._saved_network)
    append_info = property(lambda self: self._append_info)
    enc_key = property(lambda self: self._enc_key)
    enc_mode = property(lambda self: self._enc_mode)
    exception_save = property(lambda self: self._exception_save)

    def get_checkpoint_policy(self):
        return {"save_checkpoint_steps": self._save_checkpoint_steps,
                "save_checkpoint_seconds": self._save_checkpoint_seconds,
                "keep_checkpoint_max": self._keep_checkpoint_max,
                "keep_checkpoint_per_n_minutes": self._keep_checkpoint_per_n_minutes,
                "saved_network": self._saved_network}


class ModelCheckpoint(Callback):
    """Saves the train network (weights and optimizer state) during training
    as ``<directory>/<prefix>-<epoch>_<step>.ckpt`` (config: CheckpointConfig),
    and once more at the end of training unless the last step was saved."""

    def __init__(self, prefix="CKP", directory=None, config=None, **kwargs):
        super().__init__()
        if not isinstance(prefix, str) or not prefix or "/" in prefix or os.sep in prefix:
            raise ValueError(f"ModelCheckpoint: prefix must be a non-empty file name part, not {prefix!r}")
        if config is None:
            config = CheckpointConfig()
        if not isinstance(config, CheckpointConfig):
            raise TypeError(f"ModelCheckpoint: config must be a CheckpointConfig, not {type(config).__name__}")
        self._prefix = prefix
        self._directory = os.path.realpath(directory if directory is not None else os.getcwd())
        self._config = config
        self._prefix_fixed = False
        self._last_triggered_step = 0
        self._last_time = time.time()
        self._saved = []            # (path, time) of this callback's files, oldest first
        self._latest_ckpt_file_name = ""

    @property
    def latest_ckpt_file_name(self):
        """The path of the last checkpoint this callback wrote ('' before any)."""
        return self._latest_ckpt_file_name

    def _fix_prefix(self):
        """MindSpore's rule: when the folder already holds <prefix>-*.ckpt, use
        the first <prefix>_<n> that it does not."""
        os.makedirs(self._directory, exist_ok=True)
        existing = os.listdir(self._directory)

        def taken(p):
            return any(f.startswith(p + "-") and f.endswith(".ckpt") for f in existing)
        if taken(self._prefix):
            n = 1
            while taken(f"{self._prefix}_{n}"):
                n += 1
            self._prefix = f"{self._prefix}_{n}"
        self._prefix_fixed = True

    def on_train_begin(self, run_context):
        self._last_triggered_step = run_context.original_args().get("cur_step_num", 0)
        self._last_time = time.time()

    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        steps = self._config.save_checkpoint_steps
        if steps:
            due = cb.cur_step_num - self._last_triggered_step >= steps
        else:
            due = time.time() - self._last_time >= self._config.save_checkpoint_seconds
        if due:
            self._save(cb)

    def on_train_end(self, run_context):
        cb = run_context.original_args()
        if cb.get("cur_step_num", 0) != self._last_triggered_step:
            self._save(cb)

    def _save(self, cb):
        from spore.train.serialization import save_checkpoint
        if not self._prefix_fixed:
            self._fix_prefix()
        step_in_epoch = (cb.cur_step_num - 1) % max(cb.batch_num, 1) + 1
        path = os.path.join(self._directory, f"{self._prefix}-{cb.cur_epoch_num}_{step_in_epoch}.ckpt")
        net = self._config.saved_network or cb.train_network
        append = {}
        for item in self._config.append_info or []:
            if item == "epoch_num":
                append["epoch_num"] = cb.cur_epoch_num
            elif item == "step_num":
                append["step_num"] = cb.cur_step_num
            elif isinstance(item, dict):
                append.update(item)
        if append:
            save_checkpoint(net, path, append_dict=append)
        else:
            save_checkpoint(net, path)
        now = time.time()
        self._saved = [(p, t) for p, t in self._saved if p != path] + [(path, now)]
        self._remove_old(now)
        self._last_triggered_step = cb.cur_step_num
        self._last_time = now
        self._latest_ckpt_file_name = path

    def _remove_old(self, now):
        keep_max = self._config.keep_checkpoint_max
        if keep_max:
            while len(self._saved) > keep_max:
                self._unlink(self._saved.pop(0)[0])
            return
        minutes = self._config.keep_checkpoint_per_n_minutes
        if minutes:
            # keep the newest file of each n-minute window, counted from the first save
            start = self._saved[0][1]
            window = {}
            for p, t in self._saved:
                k = int((t - start) // (minutes * 60))
                if k in window:
                    self._unlink(window[k])
                window[k] = p
            live = set(window.values())
            self._saved = [(p, t) for p, t in self._saved if p in live]

    @staticmethod
    def _unlink(path):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------
class _ProgressBar(Callback):
    """Model.train's progress bar on a terminal: one line per epoch, redrawn
    at most every `interval` seconds, with the step, the latest loss and the
    step rate; at the end of an epoch the line stays with the epoch's time."""

    def __init__(self, stream=None, interval=0.1, width=30):
        super().__init__()
        self._stream = stream or sys.stdout
        self._interval = interval
        self._width = width
        self._t0 = self._last = 0.0

    @staticmethod
    def wanted():
        try:
            return sys.stdout.isatty() and os.environ.get("SPORE_PROGRESS", "1") != "0"
        except (AttributeError, ValueError):
            return False

    def on_train_epoch_begin(self, run_context):
        self._t0 = time.perf_counter()
        self._last = 0.0

    def _draw(self, cb, done, final):
        total = max(cb.get("batch_num") or 0, done)
        frac = done / total if total else 0.0
        fill = int(frac * self._width)
        bar = "=" * fill + (">" if fill < self._width else "") + " " * max(self._width - fill - 1, 0)
        dt = time.perf_counter() - self._t0
        loss = _loss_value(cb.get("net_outputs"))
        rate = done / dt if dt > 0 else 0.0
        text = (f"\r\033[Kepoch {cb.cur_epoch_num}/{cb.epoch_num} [{bar}] {done}/{total}"
                + (f"  loss {loss:.4f}" if loss is not None else "")
                + (f"  {dt:.1f}s" if final else f"  {rate:.0f} step/s"))
        self._stream.write(text + ("\n" if final else ""))
        self._stream.flush()
        _bar_state["drawn"] = not final

    def on_train_step_end(self, run_context):
        now = time.perf_counter()
        if now - self._last < self._interval:
            return
        self._last = now
        cb = run_context.original_args()
        self._draw(cb, (cb.cur_step_num - 1) % max(cb.batch_num, 1) + 1, False)

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        done = cb.get("epoch_steps", cb.batch_num)
        self._draw(cb, done, True)

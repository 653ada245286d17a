"""The one training base of the package's nets: seeding, batching, device,
threads, early stopping on a seeded held-out split, and the loss in ``get_loss``."""

import functools
import math
import os
import sys
from contextlib import contextmanager

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, PrintLog
from skorch.dataset import ValidSplit, unpack_data
from torch import nn


def _silent(*args, **kwargs):
    """A sink for messages that should not be shown."""


def _sink_stream(sink):
    """The stream that ``sink`` writes to, when it is ``print`` (or a partial of it)."""
    if sink is print:
        return sys.stdout
    if isinstance(sink, functools.partial) and sink.func is print and not sink.args:
        return sink.keywords.get("file") or sys.stdout
    return None


def _is_terminal(stream):
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class TrainingTable(PrintLog):
    """skorch's per-epoch table, with colour only when it is shown on a terminal.

    skorch's ``PrintLog`` colours each epoch's best scores with ANSI escape
    codes wherever the table goes; in a file, a pipe or a log they are
    noise.  Here the best scores are coloured only when the sink is
    ``print`` (or a ``functools.partial`` of it) writing to a terminal and
    the ``NO_COLOR`` environment variable is unset; otherwise the table is
    plain text.
    """

    def on_epoch_end(self, net, **kwargs):
        self.colour_ = _is_terminal(_sink_stream(self.sink)) and not os.environ.get("NO_COLOR")
        return super().on_epoch_end(net, **kwargs)

    def format_row(self, row, key, color):
        if not getattr(self, "colour_", False):
            # Without its "_best" flag, skorch formats the value uncoloured.
            row = {name: value for name, value in row.items() if name != key + "_best"}
        return super().format_row(row, key, color)


@contextmanager
def torch_threads(n_threads):
    """Run torch on ``n_threads`` intra-op threads (None: unchanged), restoring the caller's setting."""
    if n_threads is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def single_torch_thread():
    """Run torch on one intra-op thread, restoring the caller's setting.

    AnisoAlign's nets are small (a few hundred units): their per-batch
    products gain nothing from a second thread (see docs/anisoalign.md).
    """
    return torch_threads(1)


class Batches:
    """The row indices of each batch of an epoch, for a ``DataLoader``'s ``sampler``.

    Parameters
    ----------
    n_rows : int
        Rows of the dataset.
    batch_size : int
        Rows per batch.
    shuffle : bool, default=False
        Permute the rows at every epoch (every ``iter``).
    seed : int or None, default=None
        Seed of the permutations' own generator, seeded once, so the epochs
        see different permutations; None draws them from torch's global RNG.
    min_rows : int, default=1
        Fewest rows of a batch: a shorter tail joins the batch before it
        (a contrastive batch of one row has no negatives).
    drop_last : bool, default=False
        Drop a tail shorter than ``batch_size`` instead.
    """

    def __init__(self, n_rows, batch_size, *, shuffle=False, seed=None, min_rows=1, drop_last=False):
        self.n_rows = n_rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.min_rows = min_rows
        self.drop_last = drop_last
        self.generator = None if seed is None else torch.Generator().manual_seed(int(seed))

    def _bounds(self):
        full, tail = divmod(self.n_rows, self.batch_size)
        stops = [self.batch_size * (index + 1) for index in range(full)]
        if tail and not self.drop_last:
            if tail < self.min_rows and stops:
                stops[-1] = self.n_rows
            else:
                stops.append(self.n_rows)
        return list(zip([0, *stops[:-1]], stops))

    def __len__(self):
        return len(self._bounds())

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n_rows, generator=self.generator).tolist()
        else:
            order = list(range(self.n_rows))
        for start, stop in self._bounds():
            yield order[start:stop]


class SeededNet(NeuralNet):
    """A ``NeuralNet`` whose whole fit is a function of ``random_state``.

    The training base of every net of the package (the adapter's heads,
    AnisoAlign's phase prior and refiner).  ``fit`` runs under a forked
    torch RNG seeded with ``random_state`` (the caller's global RNG is left
    untouched) and, with ``torch_threads``, on that many intra-op threads; a
    ``validation_fraction`` slice of the fit rows, drawn with the same seed,
    is held out, and an early-stopping callback ends training when its loss
    has not improved for ``patience`` epochs (the best weights are
    restored).  A training epoch has at least ``min_batches`` batches
    (smaller batches on small data), so that early stopping judges training
    progress, not single steps.  Losses that draw noise draw it from
    ``noise_generator``: during validation it restarts from the same seed
    every epoch, so the validation losses of different epochs are
    comparable.

    A step calls ``forward_batch(X, training)`` (default: the module on the
    batch's arrays) and hands its output to ``get_loss``; subclasses change
    these two hooks.

    Parameters
    ----------
    module : torch module class
        The network trained.
    criterion : torch loss class, default=torch.nn.MSELoss
        The criterion that skorch's ``get_loss`` applies; nets whose loss is
        not a criterion of the output override ``get_loss``.
    optimizer : torch optimizer class, default=torch.optim.Adam
        The optimizer.
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=20
        Largest number of epochs.
    batch_size : int, default=256
        Rows per batch (smaller on small data, see ``min_batches``).
    validation_fraction : float, default=0.1
        Share of the fit rows held out to judge early stopping; 0 disables it.
    patience : int, default=5
        Epochs without improvement of the held-out loss before stopping.
    min_batches : int, default=16
        Least number of batches in a training epoch.
    random_state : int, default=0
        Seed of the whole fit (initialisation, shuffling, noise, held-out slice).
    torch_threads : int or None, default=1
        Intra-op threads during ``fit``; None keeps torch's setting.
    train_split : None, default=None
        The held-out split is ``validation_fraction``'s.
    verbose : int, default=0
        skorch verbosity.
    **kwargs
        Any other ``skorch.NeuralNet`` parameter, e.g. ``module__hidden_units``.
    """

    # Fewest rows of a training batch; a shorter tail joins the batch before it.
    min_batch_rows = 1

    def __init__(
        self,
        module,
        *,
        criterion=nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=20,
        batch_size=256,
        validation_fraction=0.1,
        patience=5,
        min_batches=16,
        random_state=0,
        torch_threads=1,
        train_split=None,
        verbose=0,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            verbose=verbose,
            **kwargs,
        )
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.min_batches = min_batches
        self.random_state = random_state
        self.torch_threads = torch_threads

    def get_default_callbacks(self):
        callbacks = [
            (name, TrainingTable() if name == "print_log" else callback)
            for name, callback in super().get_default_callbacks()
        ]
        if self.validation_fraction > 0:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        patience=self.patience,
                        load_best=True,
                        sink=print if self.verbose else _silent,
                    ),
                )
            )
        return callbacks

    def get_iterator(self, dataset, training=False):
        """Batches drawn by indexing the arrays once per batch.

        A ``DataLoader`` with a batch size fetches and collates every row by
        itself: 16,384 rows for 20 epochs were 655,360 Python calls, over a
        third of a fit's time.  Here :class:`Batches` hands each batch's
        indices to the dataset in one call, and the loader only converts the
        arrays to tensors.  ``iterator_train__shuffle`` permutes the rows at
        every epoch, drawn from a generator seeded with
        ``iterator_train__seed`` (from the fit's torch RNG when None).
        """
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        iterator = self.iterator_train if training else self.iterator_valid
        size = kwargs.pop("batch_size", None)
        if size is None:
            size = self.training_batch_size(len(dataset)) if training else self.batch_size
        batches = Batches(
            len(dataset),
            len(dataset) if size == -1 else size,
            shuffle=kwargs.pop("shuffle", False),
            seed=kwargs.pop("seed", None),
            min_rows=self.min_batch_rows if training else 1,
            drop_last=kwargs.pop("drop_last", False),
        )
        return iterator(dataset, batch_size=None, sampler=batches, **kwargs)

    def training_batch_size(self, n_rows):
        """Rows per training batch: ``batch_size``, smaller so an epoch has ``min_batches`` batches."""
        if self.batch_size == -1:
            return n_rows
        return max(1, min(self.batch_size, math.ceil(n_rows / self.min_batches)))

    def training_batches(self, n_rows):
        """Number of batches of a training epoch on ``n_rows`` rows."""
        return len(Batches(n_rows, self.training_batch_size(n_rows), min_rows=self.min_batch_rows))

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset = self.get_dataset(X, y)
        if self.validation_fraction <= 0:
            return dataset, None
        return ValidSplit(self.validation_fraction, random_state=self.random_state)(dataset)

    def fit(self, X, y=None, **fit_params):
        devices = [torch.cuda.current_device()] if torch.device(self.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch_threads(self.torch_threads):
            torch.manual_seed(self.random_state)
            self._train_generator = torch.Generator().manual_seed(self.random_state + 1)
            return super().fit(X, y, **fit_params)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if not training:
            self._valid_generator = torch.Generator().manual_seed(self.random_state + 2)
        return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def noise_generator(self, training):
        """The generator that noise in the current step is drawn from."""
        return self._train_generator if training else self._valid_generator

    def randn(self, shape, training):
        """Standard normal noise on the net's device, seeded as described."""
        return torch.randn(shape, generator=self.noise_generator(training)).to(self.device)

    def rand(self, shape, training):
        """Uniform noise on ``[0, 1)`` on the net's device, seeded as described."""
        return torch.rand(shape, generator=self.noise_generator(training)).to(self.device)

    def __getstate__(self):
        state = super().__getstate__()
        for key in ("_train_generator", "_valid_generator"):
            state.pop(key, None)
        return state

    def forward_batch(self, X, training):
        """The net's output on a batch (a dict of tensors on the device)."""
        return self.module_(**X)

    def _step(self, batch, training):
        X = self.to_device(unpack_data(batch)[0])
        output = self.forward_batch(X, training)
        return self.get_loss(output, None, X=X, training=training), output

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        loss, output = self._step(batch, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": output}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            loss, output = self._step(batch, training=False)
        return {"loss": loss, "y_pred": output}

    def to_device(self, Xi):
        """Float32 tensors of a batch dict, on the net's device."""
        return {
            key: torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
            .to(self.device, torch.float32)
            for key, value in Xi.items()
        }

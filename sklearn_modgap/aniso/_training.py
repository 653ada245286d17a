"""What the two skorch nets of AnisoAlign share: a seeded held-out split,
early stopping on it, seeded validation noise and a seeded fit."""

import math
from contextlib import contextmanager

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit
from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler


def _silent(*args, **kwargs):
    """A sink for messages that should not be shown."""


@contextmanager
def single_torch_thread():
    """Run torch on one intra-op thread, restoring the caller's setting.

    The nets are small (a few hundred units): their per-batch products gain
    nothing from a second thread, and on a shared 2-core machine the threads'
    synchronisation made a fit 10 times slower in our measurements.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class SeededNet(NeuralNet):
    """A ``NeuralNet`` whose whole fit is a function of ``random_state``.

    ``fit`` runs under a forked torch RNG seeded with ``random_state`` (the
    caller's global RNG is left untouched); a ``validation_fraction`` slice of
    the fit rows, drawn with the same seed, is held out, and training stops
    when its loss has not improved for ``patience`` epochs (the best weights
    are restored).  A training epoch has at least ``min_batches`` batches
    (smaller batches on small data), so that early stopping judges training
    progress, not single steps.  Losses that draw noise draw it from ``noise_generator``:
    during validation it restarts from the same seed every epoch, so the
    validation losses of different epochs are comparable.
    """

    def __init__(
        self,
        module,
        *args,
        validation_fraction=0.1,
        patience=5,
        min_batches=16,
        random_state=0,
        train_split=None,
        **kwargs,
    ):
        super().__init__(module, *args, train_split=train_split, **kwargs)
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.min_batches = min_batches
        self.random_state = random_state

    def get_default_callbacks(self):
        callbacks = list(super().get_default_callbacks())
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
        third of a fit's time.  Here a ``BatchSampler`` hands each batch's indices to
        the dataset in one call (the batches are the same rows in the same
        order), and the loader only converts the arrays to tensors.
        """
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        iterator = self.iterator_train if training else self.iterator_valid
        size = kwargs.pop("batch_size", None)
        if size is None:
            size = self.batch_size
            if training:
                size = max(1, min(size, math.ceil(len(dataset) / self.min_batches)))
        if size == -1:
            size = len(dataset)
        order = RandomSampler(dataset) if kwargs.pop("shuffle", False) else SequentialSampler(dataset)
        batches = BatchSampler(order, size, drop_last=kwargs.pop("drop_last", False))
        return iterator(dataset, batch_size=None, sampler=batches, **kwargs)

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset = self.get_dataset(X, y)
        if self.validation_fraction <= 0:
            return dataset, None
        return ValidSplit(self.validation_fraction, random_state=self.random_state)(dataset)

    def fit(self, X, y=None, **fit_params):
        devices = [torch.cuda.current_device()] if torch.device(self.device).type == "cuda" else []
        with torch.random.fork_rng(devices=devices), single_torch_thread():
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

    def step_loss(self, batch, training):
        raise NotImplementedError

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        loss, output = self.step_loss(batch, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": output}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            loss, output = self.step_loss(batch, training=False)
        return {"loss": loss, "y_pred": output}

    def to_device(self, Xi):
        """Float32 tensors of a batch dict, on the net's device."""
        return {
            key: torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
            .to(self.device, torch.float32)
            for key, value in Xi.items()
        }

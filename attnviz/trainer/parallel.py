"""Data-parallel gradients (one slice of every batch per core) and held-out scores (whole
batches shared out among the same processes).

A batch is cut into ``shards`` equal slices along its batch axis; the gradient is the mean
of the slices' gradients, summed in slice order. Where the platform can fork, slice k > 0
is computed in worker process k while this process computes slice 0; the parameters live
in shared memory, so every optimiser step is seen by the workers without copying. Where it
cannot (or with ``processes=1``), the slices are computed here, one after the other. The
numbers are the same either way: the result depends on ``shards``, never on the processes.
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import signal

import numpy as np
from threadpoolctl import threadpool_limits

from .loss import bce_loss, wrong_bits

PARENT_CHECK_SECONDS = 0.5  # how often an idle worker checks that its parent is alive


QUIET = {"over": "ignore", "invalid": "ignore", "divide": "ignore"}  # a model that diverges: the trainer says so


def shard_gradients(model, x, y, mask) -> tuple[float, float, dict[str, np.ndarray]]:
    """Loss (nats per sequence), wrong bits (summed) and parameter gradients of one slice."""
    with np.errstate(**QUIET):
        logits, cache = model.forward(x)
        loss, dlogits = bce_loss(logits, y, mask)
        wrong = float(wrong_bits(logits, y, mask).sum())
        return loss, wrong, model.backward(dlogits, cache)


def batch_scores(model, x, y, mask) -> tuple[float, np.ndarray]:
    """Forward only: loss (nats per sequence) and wrong bits of each sequence (B,) of one batch."""
    with np.errstate(**QUIET):
        logits, _ = model.forward(x)
        return bce_loss(logits, y, mask)[0], wrong_bits(logits, y, mask)


def shared_like(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Copies of ``arrays`` in one anonymous shared mapping (inherited by forked children)."""
    total = sum(a.nbytes for a in arrays.values())
    buf = mmap.mmap(-1, max(total, 1))
    out, offset = {}, 0
    for k, a in arrays.items():
        view = np.frombuffer(buf, a.dtype, a.size, offset).reshape(a.shape)
        view[...] = a
        out[k] = view
        offset += a.nbytes
    return out


class WorkerLost(RuntimeError):
    """A gradient worker process ended without being told to (it was killed)."""


class GradientPool:
    """Mean gradient over fixed slices of a batch, one slice per process where possible."""

    def __init__(self, model, shards: int, processes: int):
        self.model, self.shards = model, shards
        self.workers: list[tuple[mp.Process, object, dict]] = []
        if shards > 1 and processes > 1 and "fork" in mp.get_all_start_methods():
            model.params.update(shared_like(model.params))  # optimiser steps in place: workers see them
            ctx = mp.get_context("fork")
            for _ in range(1, min(shards, processes)):
                grads = shared_like({k: np.zeros_like(v) for k, v in model.params.items()})
                here, there = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(model, there, grads, os.getpid()), daemon=True)
                proc.start()
                there.close()
                self.workers.append((proc, here, grads))

    def gradients(self, x, y, mask) -> tuple[float, float, dict[str, np.ndarray]]:
        """Mean loss, total wrong bits and mean gradients over the batch's slices."""
        B = x.shape[1]
        if B % self.shards:
            raise ValueError(f"batch size {B} is not a multiple of {self.shards} gradient shards")
        n = B // self.shards
        cut = [(x[:, i * n:(i + 1) * n], y[:, i * n:(i + 1) * n], mask[:, i * n:(i + 1) * n])
               for i in range(self.shards)]
        mine = [0, *range(len(self.workers) + 1, self.shards)]  # slices computed in this process
        local, replies = self._share("gradients", cut[1 : len(self.workers) + 1],
                                     lambda: {i: shard_gradients(self.model, *cut[i]) for i in mine})
        for i, (reply, (_, _, grads)) in enumerate(zip(replies, self.workers, strict=True), 1):
            local[i] = (*reply, grads)
        results = [local[i] for i in range(self.shards)]
        loss = sum(r[0] for r in results) / self.shards
        wrong = sum(r[1] for r in results)
        total = {k: g.copy() for k, g in results[0][2].items()}
        with np.errstate(**QUIET):  # finite slices can sum past float32's range: the trainer says so
            for r in results[1:]:
                for k, g in r[2].items():
                    total[k] += g
            for g in total.values():
                g /= self.shards
        return loss, wrong, total

    def scores(self, batches) -> list[tuple[float, np.ndarray]]:
        """batch_scores of every (x, y, mask) in ``batches``, in their order; the batches are shared
        out among the processes, longest first to the least loaded. The same numbers as computing
        them one after the other here: each batch is computed whole, by the same code."""
        load = [0] * (len(self.workers) + 1)
        share: list[list[int]] = [[] for _ in load]
        for i in sorted(range(len(batches)), key=lambda i: -batches[i][0].size):
            k = load.index(min(load))
            share[k].append(i)
            load[k] += batches[i][0].size
        out = [None] * len(batches)
        here, replies = self._share("scores", [[batches[i] for i in mine] for mine in share[1:]],
                                    lambda: [batch_scores(self.model, *batches[i]) for i in share[0]])
        for mine, results in zip(share, [here, *replies], strict=True):
            for i, r in zip(mine, results, strict=True):
                out[i] = r
        return out

    def _share(self, kind: str, jobs: list, local):
        """Send worker k the job ``(kind, jobs[k])``, compute ``local()`` here meanwhile, and return
        its result with the workers' replies, in worker order."""
        try:
            for (_, conn, _), job in zip(self.workers, jobs, strict=True):
                conn.send((kind, job))
        except OSError:  # a broken pipe: the worker is gone
            raise WorkerLost("the gradient worker process ended (killed?)") from None
        try:
            mine = local()
        finally:  # every reply is collected, so that the pipes stay in step even after an error
            try:
                replies = [conn.recv() for _, conn, _ in self.workers]
            except (EOFError, OSError):
                raise WorkerLost("the gradient worker process ended (killed?)") from None
        for reply in replies:
            if isinstance(reply, str):
                raise RuntimeError(f"gradient worker failed: {reply}")
        return mine, replies

    def close(self) -> None:
        for proc, conn, _ in self.workers:
            try:
                conn.send(None)
                conn.close()
            except OSError:
                pass
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()  # it ignores SIGTERM
        self.workers = []


def _serve(model, conn, grads: dict[str, np.ndarray], parent: int) -> None:
    """A worker: gradients of the slices it is sent, into its shared buffers, until told to stop,
    or until its parent is gone (killed, even with SIGKILL: the worker is then adopted by another
    process, and it holds a copy of the parent's end of the pipe, so no end-of-file would come)."""
    # Ctrl-C and SIGTERM are the main process's to handle, also when they reach the whole process
    # group (a terminal's Ctrl-C, a batch system's SIGTERM): it stops after a checkpoint, then this one
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threadpool_limits(limits=1, user_api="blas")  # one BLAS thread per process, as in train.run
    while True:
        try:
            while not conn.poll(PARENT_CHECK_SECONDS):
                if os.getppid() != parent:
                    return
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            kind, data = job
            if kind == "scores":
                conn.send([batch_scores(model, *b) for b in data])
                continue
            loss, wrong, g = shard_gradients(model, *data)
            for k, v in g.items():
                grads[k][...] = v
            conn.send((loss, wrong))
        except Exception as e:  # reported by the main process, which stops the run
            conn.send(f"{type(e).__name__}: {e}")

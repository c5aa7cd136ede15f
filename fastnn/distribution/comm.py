"""The MPI world fastnn trains over: which rank this process is, the messages fastnn exchanges, and the
waiting that turns a dead or diverged peer into an error instead of a hang.

Launch detection: a process started by ``mpiexec`` (MPICH/Intel MPI: ``PMI_SIZE``; Open MPI:
``OMPI_COMM_WORLD_SIZE``; PMIx launchers: ``PMIX_RANK``) joins the MPI job (mpi4py is imported then,
and only then); any other process is a world of one rank and never imports mpi4py.

Every exchange is nonblocking (``Isend``/``Irecv``) and completed by ``World.wait``, which polls the
requests and, between polls, the control messages that say a peer will never send what we wait for:

- ``TAG_EXIT``: a peer reached the end of its script (sent from an ``atexit`` hook). It carries how many
  collectives the peer completed; if we wait in a later one, the peer will never join it.
- ``TAG_HELLO``: a peer started a new operation (fit, evaluate, predict): its handshake carries the same
  count, so a rank still waiting in a step the peer never ran (a callback stopped training on one rank
  only, an exception was caught on one rank) is told so.
Either way the waiting rank prints what happened and calls ``MPI_Abort``, which ends every rank. An
uncaught exception on any rank does the same through ``sys.excepthook``; a rank killed by a signal is
cleaned up by ``mpiexec`` itself (hydra ends the job when a process dies without finalizing).
"""
import atexit
import os
import sys
import time
import traceback

import numpy as np

_LAUNCH_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")

# Message tags. Data tags end in the parity of the exchange they belong to (``collectives % 2``): a rank
# waiting in exchange c that finds, from a peer, a data message of another kind with c's parity knows the
# peer is in a different exchange c (a peer that finished c sends c+1's, of the other parity, and cannot
# get further without us). Gradient buckets: 4*bucket + 2*phase + parity, below TAG_CONTROL.
TAG_CONTROL = 30000
TAG_HELLO, TAG_EXIT = TAG_CONTROL, TAG_CONTROL + 1
TAG_SUM, TAG_BCAST, TAG_GATHER, TAG_BARRIER = TAG_CONTROL + 2, TAG_CONTROL + 4, TAG_CONTROL + 6, TAG_CONTROL + 8
TAG_STAT = TAG_CONTROL + 10  # batch statistics inside a training step (not counted: part of the step's exchange)
_STEP = "a training step"
_KINDS = {TAG_SUM: "a sum", TAG_BCAST: "a broadcast", TAG_GATHER: "predict's gather", TAG_BARRIER: "a barrier",
          TAG_STAT: _STEP}


def _kind(tag):
    return _STEP if tag < TAG_CONTROL else _KINDS.get(tag & ~1, "a handshake")

# waiting: spin (lowest latency while a peer is a few microseconds behind), then sleep with back-off so a
# rank waiting for a slower one does not take a core from it on a loaded machine
_SPIN_S = 0.002
_SLEEP_MAX_S = 0.001


class LocalWorld:
    """A world of one process (no mpiexec): every exchange is the identity."""
    rank, size, local_size = 0, 1, 1
    collectives = 0


class World:
    """This rank's view of the MPI job: ``rank``, ``size``, ``local_size`` (ranks on this host) and the
    counted, fault-checked exchanges fastnn's data parallelism is built from."""

    def __init__(self):
        try:
            from mpi4py import MPI
        except ImportError as e:  # launched by mpiexec but without the extra
            raise ImportError("fastnn.distribution: this process was started by mpiexec but mpi4py is not "
                              "installed; install it with `pip install fastnn[mpi]` (mpi4py + the mpich wheel)") from e
        self.MPI = MPI
        world = MPI.COMM_WORLD
        self.comm = world.Dup()  # fastnn's messages never meet the user's own MPI traffic
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.local_size = self.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
        self.collectives = 0   # exchanges completed: equal on every rank at each handshake
        self.where = "start-up"  # what this rank is doing, for the error messages
        self.kind = None         # the kind of exchange this rank waits in (a TAG_* base or 0 for gradients)
        self.timeout = None
        self._hellos = {}      # handshakes received early (while a step was still finishing), by rank
        self._exits = {}       # ranks that reached their end, with their collective count
        self._status = MPI.Status()
        self._closing = False
        atexit.register(self._goodbye)
        _install_excepthook(self)

    # ---- failing loudly -----------------------------------------------------------------------
    def abort(self, message):
        """Print ``message`` (with this rank) on stderr and end the whole job with exit status 1."""
        sys.stderr.write(f"\n[fastnn rank {self.rank}/{self.size}] {message}\n")
        sys.stderr.flush()
        time.sleep(0.25)  # NOTE: lets mpiexec forward the message before the abort tears the job's pipes down
        self.MPI.COMM_WORLD.Abort(1)
        os._exit(1)  # NOTE: MPICH's Abort can return while the process manager ends the job

    def _check_peers(self, handshake):
        """Abort when a peer can never send what this rank waits for (see the module docstring)."""
        comm, status, MPI = self.comm, self._status, self.MPI
        parity, mine = self.collectives & 1, ("a handshake" if handshake else _kind(self.kind))
        for q in range(self.size):
            if q == self.rank:
                continue
            while comm.Iprobe(q, MPI.ANY_TAG, status):  # the earliest message from q nobody has asked for yet
                tag = status.Get_tag()
                if tag == TAG_EXIT:
                    self._exits[q] = comm.recv(source=q, tag=TAG_EXIT)
                elif tag == TAG_HELLO and not handshake and q not in self._hellos:
                    self._hellos[q] = comm.recv(source=q, tag=TAG_HELLO)
                else:
                    if tag != TAG_HELLO and (tag & 1) == parity and _kind(tag) != mine:
                        self.abort(f"rank {q} is in {_kind(tag)} while this rank is in {mine} ({self.where}, "
                                   f"exchange {self.collectives}): the ranks diverged (did an exception get caught, "
                                   f"or a callback stop training, on one rank only?)")
                    break
        for src, done in self._exits.items():
            if done <= self.collectives:
                self.abort(f"rank {src} ended its script after {done} exchanges while this rank waits for it "
                           f"in {self.where} (exchange {self.collectives}): every rank must make the same "
                           f"fit/evaluate/predict calls")
        if handshake:
            return
        for src, hello in self._hellos.items():
            if hello[0] <= self.collectives:
                self.abort(f"rank {src} started {hello[1]} while this rank waits for it in {self.where} "
                           f"(exchange {self.collectives}): the ranks diverged (did an exception get caught, or a "
                           f"callback stop training, on one rank only?)")

    def wait(self, requests, handshake=False):
        """Complete ``requests`` (a list of MPI requests), checking the peers while waiting."""
        Testall = self.MPI.Request.Testall
        if not Testall(requests):
            self._poll(lambda: Testall(requests), handshake)

    def _poll(self, done, handshake):
        """Call ``done()`` until it is true, checking the peers in between (spin, then sleep with back-off)."""
        start = time.monotonic()
        pause = 0.00005
        while not done():
            self._check_peers(handshake)
            waited = time.monotonic() - start
            if waited > _SPIN_S:
                time.sleep(pause)
                pause = min(pause * 2, _SLEEP_MAX_S)
            if self.timeout is not None and waited > self.timeout:
                self.abort(f"no progress for {self.timeout:.0f} s in {self.where}: a peer is stuck or the ranks "
                           f"diverged (DataParallel(timeout=...) sets this limit)")

    # ---- the exchanges --------------------------------------------------------------------------
    def _tag(self, kind):
        """The tag of this exchange's messages of ``kind``; marks what this rank now waits in."""
        self.kind = kind
        return kind + (self.collectives & 1)

    def handshake(self, what, signature):
        """Tell every rank this one starts ``what`` and get their ``signature`` objects (a list by rank).
        Collective counts that differ mean the ranks ran different sequences of operations: an error."""
        self.where = what
        comm = self.comm
        mine = (self.collectives, what, signature)
        sends = [comm.isend(mine, q, TAG_HELLO) for q in range(self.size) if q != self.rank]
        hellos = []
        for q in range(self.size):
            if q == self.rank:
                hellos.append(mine)
                continue
            if q not in self._hellos:
                self._poll(lambda: comm.Iprobe(q, TAG_HELLO, self._status), handshake=True)
                self._hellos[q] = comm.recv(source=q, tag=TAG_HELLO)
            hellos.append(self._hellos.pop(q))
        self.wait(sends)
        self.collectives += 1
        steps = {h[0] for h in hellos}
        whats = {h[1] for h in hellos}
        if len(steps) > 1 or len(whats) > 1:
            table = ", ".join(f"rank {q}: {h[1]} after {h[0]} exchanges" for q, h in enumerate(hellos))
            raise RuntimeError(f"fastnn.distribution: the ranks are not running the same operation ({table}); "
                               f"every rank must make the same fit/evaluate/predict calls in the same order")
        return [h[2] for h in hellos]

    def all_sum(self, array):
        """The element-wise sum of ``array`` over the ranks, added in rank order (so every rank gets the
        same bits, run after run), as a new array of the same dtype. Gather-to-all: for small arrays."""
        total = self._sum(array, TAG_SUM)
        self.collectives += 1
        return total

    def step_sum(self, array):
        """``all_sum`` inside a training step (batch statistics): one more exchange of the step, not counted."""
        return self._sum(array, TAG_STAT)

    def _sum(self, array, kind):
        array = np.ascontiguousarray(array)
        comm, tag = self.comm, self._tag(kind)
        parts = [None] * self.size
        requests = []
        for q in range(self.size):
            if q == self.rank:
                parts[q] = array
                continue
            parts[q] = np.empty_like(array)
            requests.append(comm.Irecv(parts[q], q, tag))
            requests.append(comm.Isend(array, q, tag))
        self.wait(requests)
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        return total

    def bcast(self, arrays, root=0):
        """Overwrite each array of ``arrays`` with root's (in place)."""
        comm, tag = self.comm, self._tag(TAG_BCAST)
        requests = []
        for a in arrays:
            if not a.flags.c_contiguous:
                raise ValueError("bcast: arrays must be C-contiguous")
            if self.rank == root:
                requests += [comm.Isend(a, q, tag) for q in range(self.size) if q != root]
            else:
                requests.append(comm.Irecv(a, root, tag))
        self.wait(requests)
        self.collectives += 1

    def gather_blocks(self, arrays, bounds):
        """Fill rows ``bounds[q]:bounds[q+1]`` of each array (axis 0) with rank q's (its own rows are
        already in place): predict's gather of the sharded outputs."""
        comm, tag = self.comm, self._tag(TAG_GATHER)
        requests = []
        for a in arrays:
            mine = a[bounds[self.rank]:bounds[self.rank + 1]]
            for q in range(self.size):
                if q == self.rank:
                    continue
                if len(mine):
                    requests.append(comm.Isend(mine, q, tag))
                theirs = a[bounds[q]:bounds[q + 1]]
                if len(theirs):
                    requests.append(comm.Irecv(theirs, q, tag))
        self.wait(requests)
        self.collectives += 1

    def barrier(self):
        self.where, self.kind = "barrier", TAG_BARRIER
        self.wait([self.comm.Ibarrier()])
        self.collectives += 1

    # ---- a clean end ------------------------------------------------------------------------------
    def _goodbye(self):
        """At a normal end of the script: tell the peers (so one waiting for us aborts instead of hanging),
        then wait until every rank has ended before MPI is finalized."""
        if self._closing:
            return
        self._closing = True
        comm = self.comm
        sends = [comm.isend(self.collectives, q, TAG_EXIT) for q in range(self.size) if q != self.rank]
        done = comm.Ibarrier()
        pause = 0.0001
        while not done.Test():
            time.sleep(pause)
            pause = min(pause * 2, 0.01)
        for q in range(self.size):  # every peer sent its notice before entering the barrier
            if q != self.rank and q not in self._exits:
                self._exits[q] = comm.recv(source=q, tag=TAG_EXIT)
        self.MPI.Request.Waitall(sends)


def _install_excepthook(world):
    """An exception no one catches ends the whole job (printed first), never leaves the peers waiting."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        try:
            previous(kind, value, tb)
        except Exception:  # noqa: BLE001 - the report must not stop the abort
            traceback.print_exception(kind, value, tb)
        if world.size > 1 and not world._closing:
            world.abort(f"uncaught {kind.__name__} on this rank: aborting every rank")
    sys.excepthook = hook


_world = None


def launched():
    """Whether this process was started by an MPI launcher (mpiexec/mpirun/srun)."""
    return any(os.environ.get(v) for v in _LAUNCH_VARS)


def world():
    """This process's World (a LocalWorld without a launcher); created on first use."""
    global _world
    if _world is None:
        _world = World() if launched() else LocalWorld()
    return _world

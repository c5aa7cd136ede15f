"""Training on several processes and machines: data parallelism over MPI (Keras 3's names).

    # train.py, run with `mpiexec -n 4 python train.py` (or `mpiexec -hosts a,b -n 8 python train.py`)
    import fastnn
    fastnn.distribution.set_distribution(fastnn.distribution.DataParallel())
    model.fit(x, y, batch_size=256, epochs=5)      # each rank computes 64 rows of every batch of 256

Every rank runs the same script on the same arrays; replicas stay bit-identical; only rank 0 prints and
writes files; an exception on any rank ends the whole job. The same script without mpiexec runs as one
process (mpi4py is then never imported). ``pip install fastnn[mpi]`` installs mpi4py and the mpich wheel
(which provides ``mpiexec``). How it works and what it costs: docs/distributed.md.
"""
from fastnn.distribution import comm as _comm
from fastnn.distribution.data_parallel import DataParallel, distribution, set_distribution

__all__ = ["DataParallel", "set_distribution", "distribution", "rank", "world_size", "initialize",
           "list_devices", "barrier", "all_sum"]


def rank():
    """This process's rank in the MPI job (0 without mpiexec)."""
    return _comm.world().rank


def world_size():
    """Number of ranks in the job (1 without mpiexec)."""
    return _comm.world().size


def initialize(job_addresses=None, num_processes=None, process_id=None):
    """Keras 3's multi-process start-up. With MPI the launcher (mpiexec) has already placed the processes:
    the arguments, when given, are checked against the job."""
    w = _comm.world()
    if num_processes is not None and num_processes != w.size:
        raise ValueError(f"initialize: num_processes={num_processes} but mpiexec started {w.size} ranks")
    if process_id is not None and process_id != w.rank:
        raise ValueError(f"initialize: process_id={process_id} but this process is rank {w.rank}")


def list_devices(device_type=None):
    """One device per rank: ``["cpu:0", ..., "cpu:<world_size - 1>"]``."""
    if device_type not in (None, "cpu", "CPU"):
        return []
    return [f"cpu:{r}" for r in range(_comm.world().size)]


def barrier():
    """Wait until every rank gets here (e.g. before other ranks read a file rank 0 has just saved)."""
    w = _comm.world()
    if w.size > 1:
        w.barrier()


def all_sum(array):
    """Element-wise sum of ``array`` over the ranks, added in rank order (every rank gets the same bits);
    the array itself (as a new array) for one process. Every rank must call it, with the same shape.

    This is the hook for statistics that must span the global batch, e.g. synchronized BatchNormalization:
    sum ``[sum(x), sum(x*x), count]`` per channel (float64) in forward and ``[sum(dy), sum(dy*xhat)]`` in
    backward, then normalize with the global values."""
    import numpy as np
    w = _comm.world()
    return np.array(array, copy=True) if w.size == 1 else w.all_sum(array)

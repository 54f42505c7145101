"""What one sandboxed worker may spend: seconds per message, memory, disk, processes, threads.

Apart from sandboxed_worker.py because the experiment's settings embed it, and loading the
settings (`evolve config show`, `evolve status`) should not load the worker's machinery.
"""

from pydantic import BaseModel, Field


class WorkerLimits(BaseModel):
    setup_seconds: float = Field(120, description="loading the set and the contract tests")
    warmup_seconds: float = Field(900, description="warm-up run including compilation")
    run_seconds: float | None = Field(
        None, description="fixed limit of one timed run; none: run_warmup_multiple times the measured warm-up"
    )
    run_warmup_multiple: float = Field(
        3.0, gt=0, description="one timed run may take this many times the warm-up run (which also compiles)"
    )
    min_run_seconds: float = Field(30.0, gt=0, description="the least limit of one timed run that follows the warm-up")
    reference_warmup_seconds: float | None = Field(
        None, description="the warm-up the run limit follows (a search sets its seed's); none: the worker's own"
    )
    memory_bytes: int = Field(16 << 30, description="address-space limit of a CPU worker")
    output_bytes: int = Field(
        512 << 20, description="largest file (stdout, stderr included) a worker may write; inductor's precompiled header is ~150 MB"
    )
    folder_bytes: int = Field(8 << 30, description="most bytes in the worker's folder (its data, compile cache, files)")
    folder_files: int = Field(200_000, description="most files and folders in the worker's folder")
    processes: int = Field(
        4096, description="RLIMIT_NPROC: processes and threads of the worker's user (the kernel does not apply it to root)"
    )
    threads: int = Field(
        1, ge=1, description="CPU threads of torch in the worker; one per worker avoids thrashing on shared cores"
    )
    gpu_memory_fraction: float = Field(
        0.45, gt=0, le=1, description="share of the GPU's memory a CUDA worker may allocate (two fit for paired runs)"
    )
    isolate_network: bool = Field(True, description="start the worker in an empty network namespace where the OS allows")
    unjailed_trusted_code: bool = Field(
        False,
        description="run workers without the kernel jail where the system has none (no Landlock or PID namespace): "
        "for a trusted single user only, candidates can then read and write what the user can",
    )


    def run_limit(self, own_warmup_seconds: float | None) -> float:
        """Seconds one timed run may take. A busy machine slows the warm-up as much as the runs, so
        a multiple of the measured warm-up fits where a fixed limit fails a healthy seed set."""
        if self.run_seconds is not None:
            return self.run_seconds
        warmup = self.reference_warmup_seconds if self.reference_warmup_seconds is not None else own_warmup_seconds
        if warmup is None:
            return self.warmup_seconds  # nothing measured yet: as long as a warm-up may take
        return max(self.min_run_seconds, self.run_warmup_multiple * warmup)

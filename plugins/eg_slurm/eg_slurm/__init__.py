"""eg-slurm: Jupyter kernels as Slurm batch jobs (the ``slurm`` resource manager of eg)."""

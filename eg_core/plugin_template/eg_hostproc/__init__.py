"""eg-hostproc: the ``hostproc`` resource manager of eg."""

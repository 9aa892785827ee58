"""The Spark context of a kernel started by eg's launcher (``--spark-context-initialization-mode``).

``launch_ipykernel.py`` starts ipykernel as a child process, so the context must be made inside
that child: with mode ``lazy`` or ``eager`` the launcher loads this module (shipped beside it, or
on the Python path) into the kernel as an IPython extension, with the mode in ``EG_SPARK_CONTEXT_INIT_MODE``. The
extension, when IPython loads it (before the kernel answers its first request),

- ``lazy``: binds ``spark`` and ``sc`` in the user namespace to stand-ins; the first attribute
  use of either (``spark.range(5)``, ``sc.parallelize``, displaying it) creates the
  ``SparkSession`` with ``SparkSession.builder.getOrCreate()`` and rebinds both names to the real
  objects;
- ``eager``: creates the session right away, so the kernel reports ready with ``spark`` and
  ``sc`` bound. When that fails (no pyspark, no Java) the kernel still starts: the error is
  printed to the kernel's stderr and raised again on the first use of ``spark`` or ``sc``.

With a session made, an interrupt (SIGINT, what both the gateway's signal and message interrupt
modes end in) during a cell calls ``sc.cancelAllJobs()`` before the cell gets its
``KeyboardInterrupt``, so the running Spark jobs stop and their executors are free. A cell waiting
in a Py4J call (a job) gets its ``KeyboardInterrupt`` as that call returns, which the cancel makes
it do; a second interrupt raises at once. When the kernel exits
(a shutdown request) or is terminated (SIGTERM: the launcher's shutdown) the session is stopped.

The master, the application name and every other setting come from Spark's usual places: the
``spark-submit`` that started the kernel (cluster mode: the driver is this kernel), or
``PYSPARK_SUBMIT_ARGS`` and ``spark-defaults.conf``; with none of them Spark runs in local mode.
Importing this module needs only the standard library; pyspark is imported when the session is
made.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import Any

MODE_ENV = "EG_SPARK_CONTEXT_INIT_MODE"
MODES = ("none", "lazy", "eager")
NAMES = ("spark", "sc")


def create_session() -> Any:
    """A ``SparkSession`` from Spark's own configuration (called once, on first use or at load)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise ImportError(
            f"this kernel's Spark context needs pyspark in its Python ({sys.executable}): {err}"
        ) from None
    return SparkSession.builder.getOrCreate()


class SparkHolder:
    """Makes the kernel's one ``SparkSession`` when first asked, binds it in the user namespace,
    cancels its jobs on interrupt and stops it at exit."""

    def __init__(self, user_ns: dict):
        self.user_ns = user_ns
        self.session: Any = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The session, made on the first call (by the calling thread; others wait for it)."""
        with self._lock:
            if self.session is None:
                if self.error is not None:
                    raise self.error
                self.session = create_session()
                atexit.register(self.stop)
                for name, value in zip(NAMES, (self.session, self.session.sparkContext)):
                    if isinstance(self.user_ns.get(name), LazySpark):
                        self.user_ns[name] = value
            return self.session

    def cancel_jobs(self) -> None:
        """Ask Spark to cancel every running job, from a thread of its own: the main thread may
        be inside a Py4J call, or in a signal handler that must return at once."""
        session = self.session
        if session is not None:
            threading.Thread(target=session.sparkContext.cancelAllJobs, name="eg-spark-cancel", daemon=True).start()

    def stop(self) -> None:
        """Stop the session if one was made (at the kernel's exit)."""
        session, self.session = self.session, None
        if session is not None:
            session.stop()
            print("eg_spark_context: Spark session stopped", file=sys.__stderr__, flush=True)


class LazySpark:
    """Stands for ``spark`` (the session) or ``sc`` (its SparkContext) until first used."""

    def __init__(self, holder: SparkHolder, name: str):
        object.__setattr__(self, "_holder", holder)
        object.__setattr__(self, "_name", name)

    def _target(self) -> Any:
        session = self._holder.get()
        return session if self._name == "spark" else session.sparkContext

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith(("_ipython_", "_repr_")) and self._holder.session is None:
            raise AttributeError(attr)  # IPython's display probes are no use of Spark
        return getattr(self._target(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._target(), attr, value)

    def __repr__(self) -> str:
        return repr(self._target())

    def __dir__(self):
        return dir(self._target())


def _outer_py4j_frame(frame: Any) -> Any:
    """The outermost frame of the Py4J call the main thread is waiting in, or None."""
    found = None
    while frame is not None:
        if "/py4j/" in frame.f_code.co_filename.replace(os.sep, "/"):
            found = frame
        elif found is not None:
            break
        frame = frame.f_back
    return found


def _interrupt_on_leaving(frame: Any) -> None:
    """Raise KeyboardInterrupt in ``frame`` when it returns or raises (through a trace function).

    A KeyboardInterrupt raised inside a Py4J call makes Py4J shut the JVM's end of its sockets,
    and the call pyspark makes next (``setCallSite``, on a new connection) may then find the
    connection closed (``Py4JNetworkError``) instead of the interrupt. The cancelled job ends the
    Java call with an error; the interrupt replaces that error as the call leaves Py4J.
    """
    previous_trace = sys.gettrace()

    def tracer(traced: Any, event: str, arg: Any) -> Any:
        if event in ("return", "exception"):
            traced.f_trace = None
            sys.settrace(previous_trace)
            raise KeyboardInterrupt
        return tracer

    frame.f_trace_lines = False
    frame.f_trace = tracer
    if previous_trace is None:
        sys.settrace(lambda *args: None)  # frame tracing runs only while a global trace function is set


def _sigint_handler(holder: SparkHolder, previous: Any):
    armed = []

    def on_sigint(signum: int, frame: Any) -> None:
        holder.cancel_jobs()
        waiting = _outer_py4j_frame(frame) if holder.session is not None else None
        if waiting is not None and not armed:  # a second interrupt raises at once
            armed.append(waiting)
            _interrupt_on_leaving(waiting)
            return
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt

    return on_sigint


def _sigterm_handler(holder: SparkHolder, previous: Any):
    # The launcher ends its kernel with SIGTERM (a shutdown through its comm port): stop the
    # session first, then die of the signal as before.
    def on_sigterm(signum: int, frame: Any) -> None:
        try:
            holder.stop()
        finally:
            if callable(previous):
                previous(signum, frame)
            else:
                signal.signal(signum, previous)
                os.kill(os.getpid(), signum)

    return on_sigterm


def load_ipython_extension(shell: Any) -> None:
    """IPython calls this when the kernel loads the extension (``--IPKernelApp.extensions``),
    before the kernel serves its first request. Returns nothing; binds ``spark`` and ``sc``."""
    mode = os.environ.get(MODE_ENV, "lazy").strip().lower()
    if mode not in MODES:
        print(f"eg_spark_context: unknown {MODE_ENV}={mode!r} (one of {', '.join(MODES)}): no Spark context",
              file=sys.__stderr__, flush=True)
        return
    if mode == "none":
        return
    holder = SparkHolder(shell.user_ns)
    for name in NAMES:
        shell.user_ns[name] = LazySpark(holder, name)
    if mode == "eager":
        try:
            holder.get()
        except Exception as err:  # the kernel starts anyway; the first use of spark raises this
            holder.error = err
            print(f"eg_spark_context: no Spark session: {err}", file=sys.__stderr__, flush=True)

    def before_cell(*_: Any) -> None:
        # ipykernel sets SIGINT to default_int_handler for each request; chain ours in front.
        signal.signal(signal.SIGINT, _sigint_handler(holder, signal.getsignal(signal.SIGINT)))

    shell.events.register("pre_run_cell", before_cell)
    signal.signal(signal.SIGTERM, _sigterm_handler(holder, signal.getsignal(signal.SIGTERM)))

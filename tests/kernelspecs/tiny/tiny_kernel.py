"""A tiny Jupyter kernel for tests and benchmarks: just enough of the messaging protocol.

    python tiny_kernel.py <connection_file>

It binds the five channels of the connection file and answers, on shell and control,
``kernel_info_request``, ``execute_request`` (code ``sleep <seconds>`` blocks that long, ``stream <count> <bytes>
<interval_ms>`` prints ``count`` lines of ``bytes`` bytes to stdout, one every ``interval_ms``,
anything else is echoed as the result), ``interrupt_request`` and ``shutdown_request`` (then exits),
publishing ``busy``/``idle`` status on iopub around each request; the heartbeat is echoed. One
thread, blocking pyzmq, only the standard library besides: about 20 MiB of RSS and no CPU at rest,
so a hundred of them fit on a laptop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sys
import time
from datetime import datetime, timezone

import zmq

DELIM = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.3"


class TinyKernel:
    def __init__(self, info: dict):
        self.key = info.get("key", "").encode()
        self.session = os.urandom(16).hex()
        self.execution_count = 0
        self.ctx = zmq.Context()
        url = f"{info.get('transport', 'tcp')}://{info['ip']}:"
        self.shell = self._bind(zmq.ROUTER, url, info["shell_port"])
        self.control = self._bind(zmq.ROUTER, url, info["control_port"])
        self.stdin = self._bind(zmq.ROUTER, url, info["stdin_port"])
        self.iopub = self._bind(zmq.PUB, url, info["iopub_port"])
        self.hb = self._bind(zmq.REP, url, info["hb_port"])

    def _bind(self, kind: int, url: str, port: int) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.linger = 0
        sock.bind(f"{url}{port}")
        return sock

    # -- wire format -------------------------------------------------------------------------

    def _sign(self, parts: list[bytes]) -> bytes:
        if not self.key:
            return b""
        h = hmac.new(self.key, digestmod=hashlib.sha256)
        for part in parts:
            h.update(part)
        return h.hexdigest().encode()

    def send(self, sock: zmq.Socket, msg_type: str, content: dict, parent: dict, idents: list[bytes] = ()) -> None:
        header = {
            "msg_id": os.urandom(16).hex(),
            "msg_type": msg_type,
            "username": "tiny",
            "session": self.session,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": PROTOCOL_VERSION,
        }
        parts = [json.dumps(p).encode() for p in (header, parent, {}, content)]
        sock.send_multipart([*idents, DELIM, self._sign(parts), *parts])

    def status(self, state: str, parent: dict) -> None:
        self.send(self.iopub, "status", {"execution_state": state}, parent)

    # -- requests ----------------------------------------------------------------------------

    def handle(self, sock: zmq.Socket) -> bool:
        """Answer one request; False when the kernel should exit."""
        frames = sock.recv_multipart()
        try:
            i = frames.index(DELIM)
        except ValueError:
            return True
        idents, parts = frames[:i], frames[i + 2 :]
        header = json.loads(parts[0])
        content = json.loads(parts[3]) if len(parts) > 3 else {}
        msg_type = header.get("msg_type", "")
        self.status("busy", header)
        keep_running = True
        if msg_type == "kernel_info_request":
            self.send(sock, "kernel_info_reply", {
                "status": "ok",
                "protocol_version": PROTOCOL_VERSION,
                "implementation": "tiny",
                "implementation_version": "0.1",
                "language_info": {"name": "text", "version": "1", "mimetype": "text/plain", "file_extension": ".txt"},
                "banner": "tiny test kernel",
                "help_links": [],
            }, header, idents)
        elif msg_type == "execute_request":
            self.execute(sock, header, content, idents)
        elif msg_type == "shutdown_request":
            self.send(sock, "shutdown_reply", {"status": "ok", "restart": bool(content.get("restart"))}, header, idents)
            keep_running = False
        elif msg_type.endswith("_request"):
            self.send(sock, msg_type[: -len("_request")] + "_reply", {"status": "ok"}, header, idents)
        self.status("idle", header)
        return keep_running

    def execute(self, sock: zmq.Socket, header: dict, content: dict, idents: list[bytes]) -> None:
        code = str(content.get("code", ""))
        self.execution_count += 1
        n = self.execution_count
        self.send(self.iopub, "execute_input", {"code": code, "execution_count": n}, header)
        words = code.split()
        if len(words) == 2 and words[0] == "sleep":
            time.sleep(float(words[1]))
        elif len(words) == 4 and words[0] == "stream":
            self.stream(int(words[1]), int(words[2]), float(words[3]) / 1000, header)
        elif code.strip():
            self.send(self.iopub, "execute_result", {"execution_count": n, "data": {"text/plain": code}, "metadata": {}}, header)
        self.send(sock, "execute_reply", {"status": "ok", "execution_count": n, "user_expressions": {}, "payload": []}, header, idents)

    def stream(self, count: int, size: int, interval: float, parent: dict) -> None:
        line = "x" * max(size - 1, 0) + "\n"
        due = time.monotonic()
        for _ in range(count):
            self.send(self.iopub, "stream", {"name": "stdout", "text": line}, parent)
            if interval:
                due += interval
                time.sleep(max(due - time.monotonic(), 0))

    def run(self) -> None:
        poller = zmq.Poller()
        for sock in (self.shell, self.control, self.stdin, self.hb):
            poller.register(sock, zmq.POLLIN)
        self.status("starting", {})
        while True:
            try:
                ready = dict(poller.poll())
            except zmq.ZMQError:
                continue  # EINTR
            if self.hb in ready:
                self.hb.send(self.hb.recv())
            if self.stdin in ready:
                self.stdin.recv_multipart()
            for sock in (self.control, self.shell):
                if sock in ready and not self.handle(sock):
                    return


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt has nothing to stop here
    with open(sys.argv[1]) as f:
        info = json.load(f)
    kernel = TinyKernel(info)
    try:
        kernel.run()
    finally:
        kernel.ctx.destroy(linger=0)


if __name__ == "__main__":
    main()

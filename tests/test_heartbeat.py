"""The heartbeat's own ZMTP connection against real libzmq heartbeat sockets: a REP one (as in
IRkernel and the tests' tiny kernel) and an echoing ROUTER one (as in ipykernel)."""

from __future__ import annotations

import asyncio
import threading

import pytest
import zmq

from eg_core._runtime.heartbeat import Heartbeat


class EchoPeer:
    """A heartbeat socket in a thread that echoes while ``answering`` is set."""

    def __init__(self, kind: int, port: int = 0):
        self.kind = kind
        self.answering = threading.Event()
        self.answering.set()
        self._stop = threading.Event()
        self.context = zmq.Context()
        self.sock = self.context.socket(kind)
        self.sock.linger = 0
        if port:
            self.sock.bind(f"tcp://127.0.0.1:{port}")
            self.port = port
        else:
            self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not self.answering.is_set() or not poller.poll(20):
                self._stop.wait(0.02)
                continue
            self.sock.send_multipart(self.sock.recv_multipart())
        self.sock.close(linger=0)
        self.context.term()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()


async def results(beat_interval: float, port: int) -> tuple[Heartbeat, list[bool]]:
    heard: list[bool] = []
    beat = Heartbeat("tcp", "127.0.0.1", port, beat_interval, heard.append)
    beat.start()
    return beat, heard


async def until(predicate, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("kind", [zmq.REP, zmq.ROUTER], ids=["REP", "ROUTER"])
async def test_a_heartbeat_is_echoed_then_missed_then_echoed_again(kind):
    peer = EchoPeer(kind)
    beat, heard = await results(0.2, peer.port)
    try:
        await until(lambda: heard[-3:] == [True] * 3)
        peer.answering.clear()
        await until(lambda: heard[-1] is False)
        peer.answering.set()
        await until(lambda: heard[-1] is True)
    finally:
        beat.close()
        peer.stop()


async def test_a_heartbeat_reconnects_to_a_peer_that_came_back():
    peer = EchoPeer(zmq.REP)
    port = peer.port
    beat, heard = await results(0.2, port)
    try:
        await until(lambda: heard[-2:] == [True] * 2)
        peer.stop()
        await until(lambda: heard[-2:] == [False] * 2)
        peer = EchoPeer(zmq.ROUTER, port)
        await until(lambda: heard[-1] is True)
    finally:
        beat.close()
        peer.stop()


async def test_a_heartbeat_before_its_kernel_listens_is_missed_not_an_error():
    peer = EchoPeer(zmq.REP)
    port = peer.port
    peer.stop()
    beat, heard = await results(0.1, port)
    try:
        await until(lambda: len(heard) >= 3)
        assert not any(heard)
        peer = EchoPeer(zmq.REP, port)
        await until(lambda: heard[-1] is True)
    finally:
        beat.close()
        peer.stop()


async def test_a_peer_that_refuses_the_handshake_is_retried_at_a_falling_rate():
    """A socket that is no heartbeat (here a PUB, which refuses a DEALER) makes the kernel
    unresponsive; reconnection backs off instead of spinning."""
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.linger = 0
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    monitor = pub.get_monitor_socket(zmq.EVENT_ACCEPTED)
    beat, heard = await results(0.4, port)
    try:
        await asyncio.sleep(2)
        assert heard and not any(heard)
        accepted = 0
        while monitor.poll(0):
            monitor.recv_multipart()
            accepted += 1
        assert 1 <= accepted <= 8  # 0.1 + 0.2 + 0.4 + 0.4 ... s apart, not thousands
    finally:
        beat.close()
        monitor.close(linger=0)
        pub.close(linger=0)
        context.term()

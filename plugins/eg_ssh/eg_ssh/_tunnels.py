"""SSH tunnels to a kernel's ports (Enterprise Gateway's ``EG_ENABLE_TUNNELING``).

With ``enable_tunneling`` the gateway reaches a kernel's five ZMQ ports and its launcher's comm
port through local port forwards (on 127.0.0.1) over an SSH connection to the kernel's host, so
only the hosts' SSH port needs to be reachable from the gateway. ``kernel.state["tunnel"]``
keeps the remote ports, so a gateway that adopts the kernel opens the tunnels again;
``kernel.handles["tunnels"]`` holds this process's forwards and pooled connection.
"""

from __future__ import annotations

from eg_core import KernelContext

from ._ssh import Target, pool

PORTS = ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port")
LOCAL = "127.0.0.1"


async def open_tunnels(kernel: KernelContext, target: Target, max_sessions: int, idle_timeout: float) -> None:
    """Forward local ports to the kernel's ports on ``target``; rewrite the kernel's connection
    info and comm address to the local ends. Raises what :meth:`Pool.acquire` raises."""
    saved = kernel.state.get("tunnel")
    if saved is None:
        info = kernel.connection_info
        saved = kernel.state["tunnel"] = {
            "ip": kernel.state["ip"],  # the host's address; the kernel listens there (or on all)
            "ports": {name: int(info[name]) for name in PORTS},
            "comm_port": int(kernel.state.get("comm_port") or 0),
        }
    conn = await pool.acquire(target, max_sessions, idle_timeout)
    forwards = []
    kernel.handles["tunnels"] = (conn, forwards)
    local_ports = {}
    for name, port in saved["ports"].items():
        forwards.append(await conn.conn.forward_local_port(LOCAL, 0, saved["ip"], port))
        local_ports[name] = forwards[-1].get_port()
    kernel.connection_info.update(local_ports, ip=LOCAL)
    if saved["comm_port"]:
        forwards.append(await conn.conn.forward_local_port(LOCAL, 0, saved["ip"], saved["comm_port"]))
        kernel.state.update(comm_ip=LOCAL, comm_port=forwards[-1].get_port())
    kernel.log.info("ssh: kernel ports tunnelled through %s (local ports %s)", target, sorted(local_ports.values()))


def close_tunnels(kernel: KernelContext) -> None:
    """Stop this process's forwards and give back their connection slot."""
    tunnels = kernel.handles.pop("tunnels", None)
    if tunnels is None:
        return
    conn, forwards = tunnels
    for forward in forwards:
        forward.close()
    pool.release(conn)

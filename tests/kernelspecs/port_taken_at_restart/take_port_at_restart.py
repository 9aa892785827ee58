"""At the second start of a kernel (its first restart, which reuses the connection file and its
ports), bind the shell port first, as another process taking it while the old kernel stopped
would; then start ipykernel, which fails with "Address already in use". Other starts start
ipykernel only."""

import json
import os
import socket
import sys

from ipykernel.kernelapp import launch_new_instance

connection_file = sys.argv[1]
starts = connection_file + ".starts"
count = int(open(starts).read()) + 1 if os.path.exists(starts) else 1
with open(starts, "w") as f:
    f.write(str(count))
if count == 2:
    thief = socket.socket()
    thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as zmq binds: past TIME_WAIT
    thief.bind(("127.0.0.1", json.load(open(connection_file))["shell_port"]))
    thief.listen()
sys.argv = [sys.argv[0], "-f", connection_file]
launch_new_instance()

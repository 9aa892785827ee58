"""At the first start of a kernel id, bind the shell port the gateway chose (as another process
taking it between the gateway's choice and the kernel's bind would), then start ipykernel, which
fails with "Address already in use". Later starts of the same kernel id start ipykernel only."""

import os
import socket
import sys

from ipykernel.kernelapp import launch_new_instance

connection_file = sys.argv[1]
marker = connection_file + ".taken-once"
if not os.path.exists(marker):
    open(marker, "w").close()
    import json

    thief = socket.socket()
    thief.bind(("127.0.0.1", json.load(open(connection_file))["shell_port"]))
    thief.listen()
sys.argv = [sys.argv[0], "-f", connection_file]
launch_new_instance()

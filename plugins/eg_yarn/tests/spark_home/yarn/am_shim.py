"""The ApplicationMaster part of the ``spark-submit`` stand-in: registers with the emulated RM
(the application becomes RUNNING), runs the python driver as its child, forwards SIGTERM to it,
and unregisters with the driver's exit status, as Spark's ApplicationMaster does.

Run in the AM container as ``python __eg_am_shim__.py <python> <driver.py> args...``.
"""
import json
import os
import signal
import subprocess
import sys
import urllib.request

RM = os.environ.get("EG_YARN_EMULATOR_RM", "")
APP_ID = "application_" + "_".join(os.environ["CONTAINER_ID"].split("_")[1:3])


def tell(what, body):
    request = urllib.request.Request(
        "http://%s/emulator/apps/%s/%s" % (RM, APP_ID, what), data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=30).read()


def main():
    tell("register", {})
    driver = subprocess.Popen(sys.argv[1:])
    signal.signal(signal.SIGTERM, lambda *_: driver.send_signal(signal.SIGTERM))
    code = driver.wait()
    status = "SUCCEEDED" if code == 0 else "FAILED"
    diagnostics = "" if code == 0 else "User application exited with status %d" % code
    try:
        tell("unregister", {"finalStatus": status, "diagnostics": diagnostics})
    except OSError:
        pass
    sys.exit(code)


if __name__ == "__main__":
    main()

"""eg-ssh's bootstrap: runs on the remote host for each kernel, started over SSH by the gateway.

The gateway runs the fixed command ``exec <python> -c 'import sys,json;exec(json.loads(sys.stdin.readline()))'``
and writes to its stdin, one JSON document per line:

1. this file's source (so the remote host needs no eg package);
2. the job: ``{"argv", "launcher_args", "launcher", "env", "stdin", "cwd", "log", "keep_log"}``.
   Every user-supplied value (environment, working directory, kernel id) travels here, inside the
   encrypted channel; none reaches a shell. ``stdin`` (the launch key's line) is written to a
   pipe that is the launcher's stdin, so the key is in no environment, file or command line;
3. only when the bootstrap answers ``{"need_launcher": true}``: the launcher's source.

The bootstrap installs the launcher under its hash (when missing), starts ``argv`` in a new
session (its own process group) with ``env`` added to the login environment, stdin from
that pipe (or /dev/null) and stdout/stderr appended to the kernel log, and answers ``{"pid": N, "warnings": [...]}``
on stdout. The gateway acknowledges with ``"go"`` (a channel closed before that makes the
bootstrap kill what it started: a launch abandoned mid-start leaves nothing behind). The
bootstrap then waits for that process. When it ends, the bootstrap writes the log's tail to
stderr (when the exit status is not 0), answers ``{"exit": status}``, removes the log after a
clean exit (unless ``keep_log``), and exits. So the SSH channel lives exactly as long as the
launcher, and its end is the launcher's end. If the SSH connection drops, the launcher goes on
(it does not read the channel), and the gateway can adopt it again through its comm port.

Standard library only; Python 3.6+; POSIX.
"""

import hashlib
import json
import os
import signal
import sys

TAIL_BYTES = 4000


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def install_launcher(spec):
    """Make sure the launcher is at its cached path; returns the path, or None when its source is needed."""
    path = os.path.expanduser(spec["path"])
    try:
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() == spec["sha256"]:
                return path
    except OSError:
        pass
    source = spec.get("source")
    if source is None:
        reply({"need_launcher": True})
        source = json.loads(sys.stdin.readline())
    data = source.encode("utf-8")
    if hashlib.sha256(data).hexdigest() != spec["sha256"]:
        raise RuntimeError("the launcher source does not match its hash")
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def build_env(extra, warnings):
    env = dict(os.environ)
    for name, value in extra.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            warnings.append("environment variable %r skipped: not a valid name or value" % name[:80])
            continue
        env[name] = value
    return env


def working_dir(cwd, warnings):
    home = os.path.expanduser("~")
    if not cwd:
        return home
    cwd = os.path.expanduser(cwd)
    if os.path.isdir(cwd):
        return cwd
    warnings.append("working directory %r does not exist on this host; using %s" % (cwd[:200], home))
    return home


def spawn(argv, env, cwd, log_fd, stdin_text=None):
    """Fork and exec ``argv`` in a new session, ``stdin_text`` (if any) on a pipe as its stdin;
    returns the pid, or raises OSError from exec."""
    err_r, err_w = os.pipe()  # close-on-exec: EOF tells that exec succeeded
    in_r, in_w = os.pipe() if stdin_text else (None, None)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(err_r)
            os.setsid()
            if in_r is not None:
                os.close(in_w)
                os.dup2(in_r, 0)
            else:
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        except BaseException as exc:  # noqa: BLE001 - report anything, then leave the child
            try:
                os.write(err_w, ("%s: %s" % (type(exc).__name__, exc)).encode("utf-8", "replace"))
            finally:
                os._exit(127)
    os.close(err_w)
    if in_r is not None:
        os.close(in_r)
        try:
            os.write(in_w, stdin_text.encode("utf-8"))  # a line: fits the pipe's buffer
        except OSError:
            pass  # exec failed: told below
        os.close(in_w)
    failure = b""
    while True:
        chunk = os.read(err_r, 4096)
        if not chunk:
            break
        failure += chunk
    os.close(err_r)
    if failure:
        os.waitpid(pid, 0)
        raise OSError("cannot run %r: %s" % (argv[0], failure.decode("utf-8", "replace")))
    return pid


def exit_status(status):
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def tail(path):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - TAIL_BYTES, 0))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def main():
    job = json.loads(sys.stdin.readline())
    warnings = []
    argv = list(job["argv"])
    if job.get("launcher"):
        path = install_launcher(job["launcher"])
        for index in job.get("launcher_args", ()):
            argv[index] = path
    env = build_env(job.get("env") or {}, warnings)
    cwd = working_dir(job.get("cwd"), warnings)
    log_path = os.path.expanduser(job["log"])
    log_dir = os.path.dirname(log_path)
    if log_dir and not os.path.isdir(log_dir):
        os.makedirs(log_dir, mode=0o700, exist_ok=True)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for warning in warnings:
        os.write(log_fd, ("eg-ssh: %s\n" % warning).encode("utf-8", "replace"))
    try:
        pid = spawn(argv, env, cwd, log_fd, job.get("stdin"))
    except OSError as exc:
        os.write(log_fd, ("eg-ssh: %s\n" % exc).encode("utf-8", "replace"))
        sys.stderr.write("%s\n" % exc)
        reply({"error": str(exc)})
        return 127
    os.close(log_fd)
    reply({"pid": pid, "log": log_path, "warnings": warnings})
    if json.loads(sys.stdin.readline() or "null") != "go":
        # The gateway gave up on this launch (or went away) before it knew the pid: stop it.
        os.killpg(pid, signal.SIGKILL)
    sys.stdin.close()
    _, status = os.waitpid(pid, 0)
    code = exit_status(status)
    if code != 0:
        sys.stderr.write(tail(log_path))
        sys.stderr.flush()
    elif not job.get("keep_log"):
        try:
            os.unlink(log_path)
        except OSError:
            pass
    reply({"exit": code})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):  # the gateway went away; the launcher is not ours to stop
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - say what went wrong on stderr, the gateway reports it
        sys.stderr.write("eg-ssh bootstrap failed: %s: %s\n" % (type(exc).__name__, exc))
        sys.exit(126)

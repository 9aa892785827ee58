"""Security against the real sshd: Enterprise Gateway's shell-injection cases (its
test_shell_injection.py), values that pass validation arriving verbatim, impersonation, and no
secrets on remote command lines or in logs."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from eg_core.testing import places_with, store_args, stored_launch_key
from eg_ssh.testing import run_code, user_processes, wait_no_processes, where

USER, OTHER = "egtest", "egtest2"
MARKER_DIR = Path("/tmp")


def marker(tag: str) -> Path:
    return MARKER_DIR / f"eg-ssh-pwned-{tag}-{uuid.uuid4().hex[:8]}"


async def kernel_env(gw, kid: str, names) -> dict:
    out = await run_code(gw, kid, f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {list(names)!r}}}))")
    return json.loads(out["stdout"])


# -- values the core refuses (400) before anything reaches a host ------------------------------

REJECTED_VALUES = [
    ("dollar-paren", "$(touch {m})"),
    ("dollar-brace", "${{HOME}}; touch {m}"),
    ("backticks", "`touch {m}`"),
    ("newline", "ok\ntouch {m}"),
    ("carriage-return", "ok\rtouch {m}"),
    ("nul", "ok\0touch {m}"),
]


@pytest.mark.parametrize("case,template", REJECTED_VALUES, ids=[c for c, _ in REJECTED_VALUES])
async def test_request_env_value_with_shell_expansion_is_rejected(ssh_gateway, case, template):
    m = marker(case)
    gw = ssh_gateway(orphans_at_startup="ignore")  # no login at startup either: none may happen below
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_X": template.format(m=m)}})
    assert r.status_code == 400, r.text
    assert "KERNEL_X" in r.json()["message"] and str(m) not in r.text  # the value is not echoed
    assert not m.exists()
    assert await wait_no_processes(USER) == []
    assert "SSH connection" not in gw.output()  # refused before any host was contacted


@pytest.mark.parametrize("name", ["KERNEL_A\nB", "KERNEL_A;touch /tmp/x", "KERNEL_$(id)", "KERNEL A", "1KERNEL"])
async def test_request_env_name_with_shell_syntax_is_rejected(ssh_gateway, name):
    gw = ssh_gateway()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {name: "v"}})
    assert r.status_code == 400, r.text


# -- values that pass validation must arrive verbatim and execute nothing ----------------------


async def test_request_env_values_arrive_verbatim(ssh_gateway):
    markers = {tag: marker(tag) for tag in ("semi", "quote", "dquote", "pipe", "amp", "redir", "user", "cwd")}
    values = {
        "KERNEL_SEMICOLON": f"a; touch {markers['semi']}; b",
        "KERNEL_SINGLE_QUOTES": f"'; touch {markers['quote']}; echo '",
        "KERNEL_DOUBLE_QUOTES": f'"; touch {markers["dquote"]}; echo "',
        "KERNEL_PIPE": f"x | tee {markers['pipe']}",
        "KERNEL_AMPERSAND": f"x & touch {markers['amp']} && echo y || echo z &",
        "KERNEL_REDIRECT": f"> {markers['redir']} < /etc/passwd 2>&1",
        "KERNEL_SPACES": "  leading and trailing spaces  ",
        "KERNEL_UNICODE": "héllo ✓ 日本 \U0001F600 \u200b",
        "KERNEL_OTHER": "\\ backslash * glob ? ~ tilde # hash % percent ( ) { } [ ] ! bang",
        "KERNEL_EMPTY": "",
        "KERNEL_JSON": '{"a": [1, 2], "b": "c d"}',
        "KERNEL_USERNAME": f"bob'; touch {markers['user']}; echo '",
    }
    gw = ssh_gateway()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": values})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        assert await kernel_env(gw, kid, values) == values
        # KERNEL_USERNAME does not choose the remote user without impersonation
        assert (await where(gw, kid))[0] == USER
        await http.delete(f"/api/kernels/{kid}")
    for tag, path in markers.items():
        assert not path.exists(), f"{tag}: {path} was created: a value was executed"


async def test_working_dir_with_shell_syntax(ssh_gateway):
    m = marker("cwd")
    nasty = Path("/tmp") / f"eg ssh dir '; touch {m.name}; \"x\" & ü {uuid.uuid4().hex[:6]}"
    nasty.mkdir()
    os.chmod(nasty, 0o777)
    missing = f"/tmp/no such dir; touch {m}"
    try:
        gw = ssh_gateway()
        async with gw.client() as http:
            r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_WORKING_DIR": str(nasty)}})
            assert r.status_code == 201, r.text
            kid = r.json()["id"]
            assert (await run_code(gw, kid, "import os; print(os.getcwd())"))["stdout"] == f"{nasty}\n"
            await http.delete(f"/api/kernels/{kid}")
            # a working directory that does not exist there: the kernel starts in the home directory
            r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_WORKING_DIR": missing}})
            assert r.status_code == 201, r.text
            kid = r.json()["id"]
            assert (await run_code(gw, kid, "import os; print(os.getcwd())"))["stdout"] == f"/home/{USER}\n"
            await http.delete(f"/api/kernels/{kid}")
        assert "does not exist on this host" in gw.output()
        assert not m.exists() and not Path(f"/home/{USER}/{m.name}").exists() and not (nasty / m.name).exists()
    finally:
        nasty.rmdir()


async def test_kernelspec_env_with_shell_syntax(ssh_gateway):
    spec = json.loads((Path(__file__).parent / "kernelspecs" / "ssh_nasty_env" / "kernel.json").read_text())
    gw = ssh_gateway()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "ssh_nasty_env"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        assert await kernel_env(gw, kid, spec["env"]) == spec["env"]
        await http.delete(f"/api/kernels/{kid}")
    for i in range(1, 7):
        assert not Path(f"/tmp/eg-ssh-pwned-spec-{i}").exists()
        assert not Path(f"/home/{USER}/eg-ssh-pwned-spec-{i}").exists()


async def test_no_secrets_on_remote_command_lines_or_in_logs(ssh_gateway, sshd, tmp_path):
    secret_value = "KERNEL value; with 'quotes' " + uuid.uuid4().hex
    gw = ssh_gateway("--debug", *store_args(tmp_path / "store"))
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_SECRETISH": secret_value}})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        launch_key = stored_launch_key(tmp_path / "store", kid)  # the key the gateway holds
        procs = user_processes(USER)
        launcher = [p for p in procs if "launch_ipykernel" in p and "ipykernel_launcher" not in p]
        assert len(launcher) == 1, procs
        pids = [int(line.split()[0]) for line in procs]
        environs = {pid: Path(f"/proc/{pid}/environ").read_bytes() for pid in pids}
        launcher_env = dict(item.split("=", 1) for item in environs[int(launcher[0].split()[0])].decode().split("\0") if "=" in item)
        assert launcher_env["KERNEL_SECRETISH"] == secret_value  # user values arrive through the environment...
        assert launcher_env["EG_LAUNCH_KEY_STDIN"] == "1"  # ...the key through the launcher's stdin
        every_command_line = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        home_files = {str(p): p.read_bytes() for p in Path(f"/home/{USER}").rglob("*") if p.is_file()}
        assert places_with(launch_key, ps=every_command_line, **{f"environ of {pid}": e for pid, e in environs.items()},
                           **home_files) == []
        for line in procs:  # nothing of the request on a command line either
            assert secret_value not in line and "KERNEL_SECRETISH" not in line
        # the kernel itself does not get the launch key, nor how it came
        assert await kernel_env(gw, kid, ["EG_LAUNCH_KEY", "EG_LAUNCH_KEY_STDIN"]) == {"EG_LAUNCH_KEY": None, "EG_LAUNCH_KEY_STDIN": None}
        await http.delete(f"/api/kernels/{kid}")
    log = gw.output()
    assert "Starting kernel" in log  # debug logging was on
    assert launch_key not in log
    private_key = sshd.client_key.read_text()
    body = "".join(private_key.splitlines()[1:-1])
    assert body[:40] not in log and "PRIVATE KEY" not in log
    assert launch_key not in sshd.log()


# -- impersonation -----------------------------------------------------------------------------


async def test_impersonation_disabled_uses_configured_user(ssh_gateway):
    gw = ssh_gateway()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_USERNAME": OTHER}})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        assert (await where(gw, kid))[0] == USER
        assert await kernel_env(gw, kid, ["KERNEL_USERNAME"]) == {"KERNEL_USERNAME": OTHER}
        await http.delete(f"/api/kernels/{kid}")


async def test_impersonation_enabled(ssh_gateway):
    gw = ssh_gateway(env={"EG_IMPERSONATION_ENABLED": "true"})
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_USERNAME": OTHER}})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        assert (await where(gw, kid))[0] == OTHER
        assert user_processes(OTHER, kid) and not user_processes(USER, kid)
        await http.delete(f"/api/kernels/{kid}")
        assert await wait_no_processes(OTHER) == []
        # without KERNEL_USERNAME: the configured user
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        kid = r.json()["id"]
        assert (await where(gw, kid))[0] == USER
        await http.delete(f"/api/kernels/{kid}")
        # an invalid user name is refused before anything starts
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_USERNAME": "bob; touch /tmp/x"}})
        assert r.status_code == 400 and "KERNEL_USERNAME" in r.json()["message"], r.text
        # a user without access is refused by the host
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_USERNAME": "nobody"}})
        assert r.status_code == 502 and "SSH login to nobody@" in r.json()["message"], r.text


async def test_impersonation_prohibited_user(ssh_gateway):
    gw = ssh_gateway(impersonation_enabled=True, prohibited_users=["root", OTHER], orphans_at_startup="ignore")
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh", "env": {"KERNEL_USERNAME": OTHER}})
    assert r.status_code == 403, r.text
    assert OTHER in r.json()["message"] and "prohibited_users" in r.json()["message"]
    assert "SSH connection" not in gw.output()

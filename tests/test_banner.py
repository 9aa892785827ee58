"""The startup banner: a ready-to-paste ``jupyter lab`` line that works, and the kernelspecs
with the plugin serving each."""

from __future__ import annotations

import re
import shlex
import time

import httpx


def banner(gw) -> str:
    """The gateway's output once the banner is written (it follows the listen by a moment)."""
    deadline = time.monotonic() + 30
    while "jupyter lab --gateway-url=" not in gw.output():
        assert time.monotonic() < deadline, gw.output()
        time.sleep(0.05)
    return gw.output()


def jupyter_lab_line(output: str) -> list[str]:
    line = next(line.strip() for line in output.splitlines() if line.strip().startswith("jupyter lab --gateway-url="))
    return shlex.split(line)


def test_banner_command_connects_with_the_generated_token(gateway_factory):
    gw = gateway_factory(token="")
    output = banner(gw)
    assert "Kernelspecs, by the plugin that runs them:" in output
    assert re.search(r"^    local \(eg-core \(builtin\)\): .*\bpython3\b", output, re.M), output
    args = dict(a[2:].split("=", 1) for a in jupyter_lab_line(output)[2:])
    assert args["gateway-url"] == gw.url
    r = httpx.get(args["gateway-url"] + "/api/kernelspecs", headers={"Authorization": f"token {args['GatewayClient.auth_token']}"})
    assert r.status_code == 200 and "python3" in r.json()["kernelspecs"]


def test_banner_refers_to_a_configured_token_without_copying_it(gateway_factory):
    gw = gateway_factory(token="", env={"EG_AUTH_TOKEN": "s3cret-token-value"})
    output = banner(gw)
    assert jupyter_lab_line(output)[-1] == "--GatewayClient.auth_token=$EG_AUTH_TOKEN"
    assert "s3cret-token-value" not in output


def test_banner_reads_a_token_file_where_the_token_came_from_one(gateway_factory, tmp_path):
    import subprocess

    token_file = tmp_path / "the token"
    token_file.write_text("file-token-value\n")
    gw = gateway_factory(token="", env={"EG_AUTH_TOKEN_FILE": str(token_file)})
    output = banner(gw)
    line = next(line.strip() for line in output.splitlines() if line.strip().startswith("jupyter lab --gateway-url="))
    assert "file-token-value" not in output and "$EG_AUTH_TOKEN" not in line
    # The shell expands the argument to the token the gateway serves with.
    argument = subprocess.run(["bash", "-c", "printf %s " + line[line.index("--GatewayClient"):]], capture_output=True, text=True).stdout
    assert argument == "--GatewayClient.auth_token=file-token-value"

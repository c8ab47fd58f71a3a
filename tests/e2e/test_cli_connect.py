"""Connection settings as the ``temporal`` CLI takes them: flags, TEMPORAL_* variables, TOML profiles, TLS."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import flowtide_process as flowtide
from tests.support.tls_proxy import make_pki, tls_front


@pytest.fixture
async def tls_port(dev_server, tmp_path):
    pki = make_pki(tmp_path)
    async with tls_front(dev_server.port, pki) as port:
        yield port, pki


async def test_tls_with_the_ca_connects_by_flag_env_and_profile(tls_port, tmp_path):
    port, pki = tls_port
    addr = f"127.0.0.1:{port}"
    code, out, err = await flowtide("runs", "list", "--address", addr, "--tls-ca-path", str(pki["ca"]), "--json")
    assert code == 0, err
    assert isinstance(json.loads(out), list)
    code, out, err = await flowtide("runs", "list", "--json", env={
        "TEMPORAL_ADDRESS": addr, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki["ca"])})
    assert code == 0, err
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.secure]\naddress = "{addr}"\nnamespace = "default"\n\n'
                      f'[profile.secure.tls]\nserver_ca_cert_path = "{pki["ca"]}"\n')
    code, out, err = await flowtide("runs", "list", "--profile", "secure", "--json",
                                    env={"TEMPORAL_CONFIG_FILE": str(config)})
    assert code == 0, err


async def test_tls_without_the_ca_is_one_line_and_exit_3(tls_port):
    port, _ = tls_port
    code, _, err = await flowtide("runs", "list", "--address", f"127.0.0.1:{port}", "--tls")
    assert code == 3, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err and f"127.0.0.1:{port}" in lines[0]


async def test_a_missing_profile_file_or_certificate_is_exit_2(tmp_path):
    code, _, err = await flowtide("runs", "list", "--address", "127.0.0.1:1", "--tls-ca-path",
                                  str(tmp_path / "nope.pem"))
    assert code == 2 and "nope.pem" in err and len(err.strip().splitlines()) == 1


async def test_mutual_tls_needs_the_client_certificate(dev_server, tmp_path):
    pki = make_pki(tmp_path)
    async with tls_front(dev_server.port, pki, mtls=True) as port:
        base = ("runs", "list", "--address", f"127.0.0.1:{port}", "--tls-ca-path", str(pki["ca"]), "--json")
        code, out, err = await flowtide(*base, "--tls-cert-path", str(pki["client_cert"]),
                                        "--tls-key-path", str(pki["client_key"]))
        assert code == 0, err
        code, out, _ = await flowtide(*base)
        assert code == 3 and json.loads(out)["error"]["code"] == "TEMPORAL_UNREACHABLE"

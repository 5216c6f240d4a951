"""Authentication to Prometheus: a real reverse proxy in front of a real Prometheus.

The proxy (``http.server`` on 127.0.0.1, optionally TLS with client certificates made
by ``openssl``) checks what a Mimir gateway or an nginx in front of Prometheus would
check, answers 401 otherwise, and forwards the request to the real Prometheus. Secrets
must never appear in what Berth prints, writes or logs.
"""

from __future__ import annotations

import base64
import http.server
import logging
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from adapters.cli.app import app
from adapters.prometheus import fetch_live
from engine.documents.bundle import Bundle
from engine.documents.live import MetricsSource
from engine.documents.load import load_documents
from engine.errors import InputError, LiveSourceError
from tests.prom_fixture import OpenMetrics, running_prometheus
from tests.test_prometheus import AT, GI, _node, _times

API = "placement.berth.dev/v1alpha1"
TOKEN = "tok-3f9a1c77e2b54d0e"
PASSWORD = "pw-8b21d4c6a9f0"
Check = Callable[[http.server.BaseHTTPRequestHandler], bool]


def data() -> str:
    om = OpenMetrics()
    _node(om, "north", "n1", _times(1800, 0), cpu=8, memory=32 * GI, pods=110)
    return om.text()


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(data(), tmp_path_factory.mktemp("prom-auth")) as url:
        yield url


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, check: Check) -> None:
        self.upstream = upstream
        self.check = check
        self.seen: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), _Forward)


class _Forward(http.server.BaseHTTPRequestHandler):
    server: _Proxy

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers.items()))
        if not self.server.check(self):
            self._answer(401, b'{"status":"error","error":"unauthorized"}')
            return
        try:
            with urllib.request.urlopen(self.server.upstream + self.path, timeout=10) as resp:
                self._answer(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            self._answer(exc.code, exc.read())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(server: _Proxy, scheme: str = "http") -> Iterator[tuple[str, _Proxy]]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_port}", server
    finally:
        server.shutdown()
        server.server_close()


def _header_is(name: str, value: str) -> Check:
    return lambda handler: handler.headers.get(name) == value


@pytest.fixture
def bearer_proxy(prom: str) -> Iterator[tuple[str, _Proxy]]:
    """Like a Mimir gateway: a bearer token and the tenant in X-Scope-OrgID."""
    def check(handler: http.server.BaseHTTPRequestHandler) -> bool:
        return (_header_is("Authorization", f"Bearer {TOKEN}")(handler)
                and _header_is("X-Scope-OrgID", "tenant-a")(handler))

    yield from _serve(_Proxy(prom, check))


@pytest.fixture
def basic_proxy(prom: str) -> Iterator[tuple[str, _Proxy]]:
    expected = "Basic " + base64.b64encode(f"berth:{PASSWORD}".encode()).decode()
    yield from _serve(_Proxy(prom, _header_is("Authorization", expected)))


def documents(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"apiVersion": API, "kind": "Cluster", "metadata": {"name": "north"},
         "spec": {"capacity": {"cpu": "1", "memory": "1Gi"}}},
        {"apiVersion": API, "kind": "Workload", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"replicas": 1, "resources": {"cpu": "500m", "memory": "1Gi"}}},
        {"apiVersion": API, "kind": "MetricsSource", "metadata": {"name": "live"}, "spec": spec},
    ]


def bundle(spec: dict[str, Any]) -> Bundle:
    return load_documents(documents(spec))


def _fetch(url: str, prometheus: dict[str, Any]) -> Any:
    b = bundle({"prometheus": {"retries": 0, **prometheus}, "latency": {"enabled": False}})
    return fetch_live(b, url, at=AT)


# --- bearer token, custom header ------------------------------------------------------


def test_bearer_token_from_a_file_and_an_org_header(bearer_proxy: tuple[str, _Proxy],
                                                     tmp_path: Path) -> None:
    url, proxy = bearer_proxy
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")  # as a Kubernetes secret volume has it
    live = _fetch(url, {"bearerToken": {"file": str(token_file)}, "headers": {"X-Scope-OrgID": "tenant-a"}})
    assert live.clusters["north"].allocatable == {"cpu": 8000, "memory": 32 * GI, "pods": 110}
    assert proxy.seen and all(h["Authorization"] == f"Bearer {TOKEN}" for h in proxy.seen)


def test_without_the_token_the_refusal_names_no_secret(bearer_proxy: tuple[str, _Proxy],
                                                       tmp_path: Path) -> None:
    url, _ = bearer_proxy
    wrong = tmp_path / "token"
    wrong.write_text("tok-wrong-0000")
    with pytest.raises(LiveSourceError) as err:
        _fetch(url, {"bearerToken": {"file": str(wrong)}, "headers": {"X-Scope-OrgID": "tenant-a"}})
    assert "was refused (HTTP 401)" in str(err.value) and "check the credentials" in str(err.value)
    assert "tok-wrong" not in str(err.value)


def test_token_from_the_environment_never_reaches_output_plan_or_logs(
    bearer_proxy: tuple[str, _Proxy], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, proxy = bearer_proxy
    spec = {"prometheus": {"url": url, "bearerToken": {"env": "BERTH_TEST_PROM_TOKEN"},
                           "headers": {"X-Scope-OrgID": "tenant-a"}},
            "latency": {"enabled": False}}
    bundle_file = tmp_path / "bundle.yaml"
    bundle_file.write_text(yaml.safe_dump_all(documents(spec)))
    env = {"BERTH_TEST_PROM_TOKEN": TOKEN, "COLUMNS": "200"}
    caplog.set_level(logging.DEBUG)
    fleet, plan = tmp_path / "fleet.yaml", tmp_path / "plan.json"
    runner = CliRunner()
    shown = runner.invoke(app, ["fleet", str(bundle_file), "--at", AT.isoformat(), "--output", str(fleet)],
                          env=env)
    assert shown.exit_code == 0, shown.output
    snapshot = next(yaml.safe_load_all(fleet.read_text()))
    assert snapshot["spec"]["capacity"]["cpu"] == "8"  # read through the proxy
    placed = runner.invoke(app, ["place", str(bundle_file), "--output", str(plan)], env=env)
    assert placed.exit_code == 0, placed.output
    assert len(proxy.seen) >= 8  # both commands went through the proxy, authenticated
    refused = runner.invoke(app, ["place", str(bundle_file), "--output", str(tmp_path / "no.json")],
                            env={**env, "BERTH_TEST_PROM_TOKEN": "tok-wrong-1111"})
    assert refused.exit_code == 3 and "HTTP 401" in refused.output
    assert not (tmp_path / "no.json").exists()
    for text in (shown.output, placed.output, refused.output, fleet.read_text(), plan.read_text(),
                 caplog.text):
        assert TOKEN not in text and "tok-wrong" not in text


def test_an_unset_token_variable_is_bad_input_naming_it(bearer_proxy: tuple[str, _Proxy],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BERTH_TEST_UNSET", raising=False)
    with pytest.raises(InputError, match=r"spec\.prometheus\.bearerToken\.env.*BERTH_TEST_UNSET") as err:
        _fetch(bearer_proxy[0], {"bearerToken": {"env": "BERTH_TEST_UNSET"}})
    assert err.value.exit_code == 2


def test_credentials_are_not_accepted_in_the_bundle() -> None:
    with pytest.raises(InputError, match="credentials do not belong in the bundle"):
        bundle({"prometheus": {"headers": {"Authorization": f"Bearer {TOKEN}"}}})
    with pytest.raises(InputError, match="exactly one of file"):
        bundle({"prometheus": {"bearerToken": {"file": "/a", "env": "B"}}})


# --- basic auth -----------------------------------------------------------------------


def test_basic_auth_password_from_the_environment(basic_proxy: tuple[str, _Proxy],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url, proxy = basic_proxy
    monkeypatch.setenv("BERTH_TEST_PROM_PASSWORD", PASSWORD)
    live = _fetch(url, {"basicAuth": {"username": "berth", "password": {"env": "BERTH_TEST_PROM_PASSWORD"}}})
    assert live.clusters["north"].allocatable["cpu"] == 8000
    assert proxy.seen and all(h["Authorization"].startswith("Basic ") for h in proxy.seen)
    monkeypatch.setenv("BERTH_TEST_PROM_PASSWORD", "pw-wrong")
    with pytest.raises(LiveSourceError, match=r"HTTP 401") as err:
        _fetch(url, {"basicAuth": {"username": "berth", "password": {"env": "BERTH_TEST_PROM_PASSWORD"}}})
    assert "pw-wrong" not in str(err.value)


# --- a cluster's own Prometheus gets its own credentials only --------------------------


def test_per_cluster_credentials_stay_with_their_server(bearer_proxy: tuple[str, _Proxy],
                                                        basic_proxy: tuple[str, _Proxy],
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (bearer_url, bearer), (basic_url, basic) = bearer_proxy, basic_proxy
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv("BERTH_TEST_PROM_PASSWORD", PASSWORD)
    cfg = {"clusters": {"north": {"url": basic_url, "basicAuth": {
        "username": "berth", "password": {"env": "BERTH_TEST_PROM_PASSWORD"}}}},
        "bearerToken": {"file": str(token_file)}, "headers": {"X-Scope-OrgID": "tenant-a"}}
    live = _fetch(bearer_url, cfg)
    assert live.clusters["north"].allocatable["cpu"] == 8000
    assert bearer.seen and basic.seen
    assert not any(TOKEN in h.get("Authorization", "") or "X-Scope-OrgID" in h for h in basic.seen)


# --- TLS: a CA bundle and a client certificate ----------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=berth-test-ca", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        (d / f"{name}.ext").write_text(ext)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=berth-{name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


@pytest.fixture
def tls_proxy(prom: str, pki: Path) -> Iterator[tuple[str, _Proxy]]:
    """HTTPS, and only for clients whose certificate the CA signed (mutual TLS)."""
    server = _Proxy(prom, lambda handler: True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(pki / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serve(server, "https")


def test_ca_bundle_and_client_certificate(tls_proxy: tuple[str, _Proxy], pki: Path) -> None:
    url, _ = tls_proxy
    tls = {"caFile": str(pki / "ca.crt"), "certFile": str(pki / "client.crt"),
           "keyFile": str(pki / "client.key")}
    live = _fetch(url, {"tls": tls})
    assert live.clusters["north"].allocatable["cpu"] == 8000
    # Without the CA bundle, the server's certificate is not trusted.
    with pytest.raises(LiveSourceError, match=r"TLS handshake.*certificate verify failed"):
        _fetch(url, {"tls": {"certFile": tls["certFile"], "keyFile": tls["keyFile"]}})
    # Without a client certificate, the server refuses the connection.
    with pytest.raises(LiveSourceError):
        _fetch(url, {"tls": {"caFile": tls["caFile"]}})


def test_metrics_source_default_sends_no_credentials() -> None:
    settings = MetricsSource.default().spec.prometheus
    assert settings.bearer_token is None and settings.basic_auth is None and settings.headers == {}


def test_tls_files_that_are_not_pem_name_their_field(tmp_path: Path, pki: Path) -> None:
    """A CA bundle or client certificate that is not PEM is bad input, named by its field, before any query."""
    from engine import InputError

    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(InputError) as ca:
        _fetch("https://127.0.0.1:9", {"tls": {"caFile": str(junk)}})
    assert ca.value.field == "spec.prometheus.tls.caFile" and str(junk) in str(ca.value)
    with pytest.raises(InputError) as cert:
        _fetch("https://127.0.0.1:9", {"tls": {"caFile": str(pki / "ca.crt"), "certFile": str(junk),
                                               "keyFile": str(pki / "client.key")}})
    assert cert.value.field == "spec.prometheus.tls.certFile"

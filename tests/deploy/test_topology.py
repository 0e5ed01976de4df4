"""deploy/compose.yaml's topology with processes instead of containers.

Two ``hub serve`` processes (the virtualenv's ``hub``, each on its own port) share what two
replicas share in compose: one Redis (a key prefix of their own, deleted afterwards), one audit
stream in it, and one var directory (so one demo signing key: a token from ``hub token`` is good
at both). In front of them runs HAProxy with deploy/haproxy.cfg itself, its addresses given
through the environment. Each hub starts its own simulated vendors (the demo world).

Through the balancer: the root README's worked example returns Reyes from three agencies, and
asked again the other replica answers it from the shared cache; requests alternate between the
two hubs (HAProxy's X-Served-By, and each hub's own access log); both hubs' entries form one
audit chain that ``hub audit verify`` accepts; and a per-user rate limit set low in hub.toml is
enforced across both hubs, answering 429 although each hub saw fewer requests than the limit.

Apart from the balancer: deploy/hub.toml.example serves in production mode, tokens verified
against a JWKS served on loopback, GraphiQL and introspection off.

Every process is started here and stopped here, by its PID; every wait has a deadline.
Without haproxy the balancer tests skip, or fail when CI=true.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.deploy.tools import DEPLOY, haproxy, hub_executable, in_ci, need_tool
from tests.ports import free_port

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
STARTUP_S = 60.0
STOP_S = 20.0
HTTP_TIMEOUT_S = 30.0
# [rate_limits] user_per_minute of the topology's hub.toml.
USER_PER_MINUTE = 5

# The root README's worked example, verbatim.
README_QUERY = (
    '{ search(text: "Reyes") { hits { __typename ... on Person { name { given middle surname } '
    "dateOfBirth ssn provenance { agency { ori } system { name } } } ... on RecordPointer { kind "
    "owner { ori name } contact } } sources { source status count latencyMs message } } }"
)
SMALL_QUERY = '{ search(text: "Reyes", kinds: [PERSON]) { hits { __typename } } }'
ACCESS_LINE = re.compile(rb"POST /graphql HTTP/1\.1\\?\" \d{3}")  # text or JSON logs

# No proxy for loopback, whatever the environment says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Reply:
    status: int
    headers: Message
    body: Any


def call(
    url: str, body: Any = None, headers: dict[str, str] | None = None, method: str | None = None
) -> Reply:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _opener.open(request, timeout=HTTP_TIMEOUT_S) as response:
            return Reply(response.status, response.headers, _decode(response.read()))
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers, _decode(error.read()))


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child: none of the caller's hub settings, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") and k != "REDIS_URL"}
    env.update(extra)
    return env


class Process:
    """A child process with its output in a log file; stopped by its PID."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.log = cwd / f"{name}.log"
        self._out = self.log.open("wb")
        self.popen = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_stop(self) -> None:
        if self.alive():
            self.popen.terminate()

    def wait_stopped(self) -> None:
        try:
            self.popen.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=STOP_S)
        finally:
            self._out.close()


def stop_all(processes: list[Process]) -> None:
    for process in processes:
        process.signal_stop()  # all at once: each hub takes a moment to stop its vendors
    for process in processes:
        process.wait_stopped()


def wait_until(what: str, check: Callable[[], bool], deadline_s: float, *watch: Process) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for process in watch:
            if not process.alive():
                pytest.fail(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in watch)
    pytest.fail(f"{what}: not within {deadline_s} s\n{logs}")


def healthy(url: str) -> bool:
    return call(f"{url}/healthz").status == 200


def listens(process: Process, port: int) -> bool:
    """Whether ``process`` itself holds the listening socket on ``port`` (Linux /proc): a port
    chosen free can be taken by another program before our process binds it, and that program
    might answer /healthz too."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                fields = row.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    fd_dir = Path(f"/proc/{process.popen.pid}/fd")
    try:
        return any(os.readlink(fd_dir / fd) in inodes for fd in os.listdir(fd_dir))
    except FileNotFoundError:  # the process is gone, or a descriptor closed meanwhile
        return False


def serving(process: Process, port: int) -> bool:
    return listens(process, port) and healthy(f"http://127.0.0.1:{port}")


def redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError:
        client.close()
        if in_ci():
            pytest.fail(f"no Redis at {REDIS_URL} (CI=true: .ci/run starts one)")
        pytest.skip(f"no Redis at {REDIS_URL}")
    return client


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    for key in list(client.scan_iter(match=f"{prefix}:*", count=500)):
        client.delete(key)


def hub_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hub_executable(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=HTTP_TIMEOUT_S,
        check=False,
    )


# -- the topology ---------------------------------------------------------------------------------


@dataclass
class Topology:
    url: str  # the balancer
    hubs: dict[str, Process]  # by HAProxy's server name
    balancer: Process
    audit_log: str
    directory: Path
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        """The root README's command: hub token, with the hubs' HUB_VAR_DIR."""
        if user not in self.tokens:
            args = ("token", "--user", user, "--agency", "CA0990000", "--roles", "analyst")
            result = hub_cli(*args, env=self.env, cwd=self.directory)
            assert result.returncode == 0, result.stderr
            self.tokens[user] = result.stdout.strip()
        return self.tokens[user]

    def search(self, user: str, query: str = SMALL_QUERY) -> Reply:
        headers = {
            "Authorization": f"Bearer {self.token(user)}",
            "X-Purpose": "C",
            "X-Case-Number": "26-001234",
            "Content-Type": "application/json",
        }
        return call(f"{self.url}/graphql", {"query": query}, headers)

    def access_lines(self, name: str) -> int:
        return len(ACCESS_LINE.findall(self.hubs[name].log.read_bytes()))

    def explain(self, replies: Reply | list[Reply]) -> str:
        """For a failed assertion: what came back, and the end of every process's log."""
        replies = replies if isinstance(replies, list) else [replies]
        lines = [f"{r.status} {r.headers.get('X-Served-By')}: {str(r.body)[:300]}" for r in replies]
        for process in [*self.hubs.values(), self.balancer]:
            state = "running" if process.alive() else f"exited {process.popen.returncode}"
            lines.append(f"--- {process.name} ({state})\n{process.tail(1500)}")
        return "\n".join(lines)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    balancer = haproxy()
    client = redis_or_skip()
    directory = tmp_path_factory.mktemp("topology")
    prefix = f"test:deploy:{uuid.uuid4().hex[:12]}"
    audit_log = f"{REDIS_URL}#{prefix}:audit"
    config = directory / "hub.toml"
    config.write_text(
        'mode = "demo"\n'
        f"audit_log = {json.dumps(audit_log)}\n"
        f"redis_prefix = {json.dumps(prefix)}\n"
        "[rate_limits]\n"
        f"user_per_minute = {USER_PER_MINUTE}\n"
    )
    env = clean_env(REDIS_URL=REDIS_URL, HUB_VAR_DIR=str(directory / "var"))
    ports = {"hub-1": free_port(), "hub-2": free_port()}
    lb_port, lb_health_port = free_port(), free_port()
    started: list[Process] = []
    try:
        for name, port in ports.items():
            args = [hub_executable(), "serve", "--config", str(config)]
            hub_env = {**env, "HUB_PORT": str(port)}
            started.append(Process(name, args, env=hub_env, cwd=directory))
        for process, port in zip(started, ports.values(), strict=True):
            wait_until(f"{process.name} /healthz", lambda p=process, n=port: serving(p, n),
                       STARTUP_S, process)  # fmt: skip
        lb_env = clean_env(
            HUB_LB_BIND=f"127.0.0.1:{lb_port}",
            HUB_LB_HEALTH_BIND=f"127.0.0.1:{lb_health_port}",
            HUB_1_ADDR=f"127.0.0.1:{ports['hub-1']}",
            HUB_2_ADDR=f"127.0.0.1:{ports['hub-2']}",
        )
        lb = Process("haproxy", [balancer, "-db", "-f", str(DEPLOY / "haproxy.cfg")],
                     env=lb_env, cwd=directory)  # fmt: skip
        started.append(lb)
        lb_url = f"http://127.0.0.1:{lb_port}"
        wait_until("the balancer", lambda: serving(lb, lb_health_port) and listens(lb, lb_port),
                   STARTUP_S, lb)  # fmt: skip
        seen: set[str] = set()

        def both_up() -> bool:
            seen.add(call(f"{lb_url}/healthz").headers.get("X-Served-By", ""))
            return {"hub-1", "hub-2"} <= seen

        wait_until("both hubs behind the balancer", both_up, STARTUP_S, *started)
        hubs = {p.name: p for p in started if p.name in ports}
        yield Topology(lb_url, hubs, lb, audit_log, directory, env)
    finally:
        stop_all(started)
        drop_prefix(client, prefix)
        client.close()


# -- through the balancer -------------------------------------------------------------------------


def jordan_reyes(reply: Reply) -> dict[str, dict[str, Any]]:
    """Jordan Reyes as each agency's records system (RMS) holds him, by ORI: the README's
    three spellings. (CAD systems hold him too, less carefully: not counted here.)"""
    hits = reply.body["data"]["search"]["hits"]
    people = [
        h
        for h in hits
        if h["__typename"] == "Person"
        and h["provenance"]["system"]["name"].endswith("-rms")
        and (h["name"]["given"], h["name"]["surname"]) == ("Jordan", "Reyes")
    ]
    by_ori = {p["provenance"]["agency"]["ori"]: p for p in people}
    assert len(by_ori) == len(people), "one record per agency's RMS"
    return by_ori


def test_worked_example_through_the_balancer(topology: Topology) -> None:
    first = topology.search("analyst1", README_QUERY)
    assert first.status == 200, topology.explain(first)
    reyes = jordan_reyes(first)
    assert set(reyes) == {"CA0990000", "WA0990100", "OR0990200"}, "three agencies"
    assert {p["dateOfBirth"] for p in reyes.values()} == {"1988-04-12"}
    assert len({json.dumps(p["name"]) for p in reyes.values()}) == 3, "three spellings"
    assert reyes["CA0990000"]["ssn"] == "521-44-7810"
    assert reyes["OR0990200"]["ssn"] is None, "Harbor Falls shares who he is, not his SSN"
    hits = first.body["data"]["search"]["hits"]
    assert any(
        h["__typename"] == "RecordPointer" and h["owner"]["ori"] == "OR0990200" for h in hits
    )
    codes = {e["extensions"]["code"] for e in first.body.get("errors", [])}
    assert "FORBIDDEN_FIELD" in codes

    # Asked again, the other replica answers, from the cache the first one filled in Redis.
    again = topology.search("analyst1", README_QUERY)
    assert again.status == 200, topology.explain(again)
    assert {first.headers["X-Served-By"], again.headers["X-Served-By"]} == {"hub-1", "hub-2"}
    assert again.body["data"] == first.body["data"] | {"search": again.body["data"]["search"]}
    assert jordan_reyes(again) == reyes
    answered = [s for s in again.body["extensions"]["sources"] if s["status"] in ("OK", "NO_HIT")]
    assert answered
    assert all(s["cached"] for s in answered), again.body["extensions"]["sources"]


def test_requests_alternate_between_the_hubs(topology: Topology) -> None:
    before = {name: topology.access_lines(name) for name in topology.hubs}
    replies = [topology.search("analyst2") for _ in range(4)]
    assert [r.status for r in replies] == [200] * 4, topology.explain(replies)
    served = [r.headers["X-Served-By"] for r in replies]
    assert set(served) == {"hub-1", "hub-2"}
    assert all(a != b for a, b in itertools.pairwise(served)), served
    assert len({r.headers["X-Request-Id"] for r in replies}) == 4
    # Each hub's own access log saw exactly the requests HAProxy says it sent there.
    counts = Counter(served)

    def logged() -> bool:
        return all(topology.access_lines(n) - before[n] == counts[n] for n in topology.hubs)

    wait_until("the hubs' access logs", logged, 10.0)


def test_both_hubs_write_one_audit_chain(topology: Topology) -> None:
    replies = [topology.search("analyst3") for _ in range(2)]
    trace_by_hub = {r.headers["X-Served-By"]: r.headers["X-Trace-Id"] for r in replies}
    assert set(trace_by_hub) == {"hub-1", "hub-2"}, topology.explain(replies)

    verify = hub_cli("audit", "verify", "--log", topology.audit_log,
                     env=topology.env, cwd=topology.directory)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("ok:"), verify.stdout
    entries = int(re.search(r"(\d+) entries", verify.stdout).group(1))  # type: ignore[union-attr]
    assert entries >= 2

    tail = hub_cli("audit", "tail", "--log", topology.audit_log, "-n", str(entries),
                   env=topology.env, cwd=topology.directory)  # fmt: skip
    assert tail.returncode == 0, tail.stderr
    for hub, trace in trace_by_hub.items():
        assert f"trace={trace}" in tail.stdout, f"{hub}'s entry is not in the chain"
    sequence = [int(m) for m in re.findall(r"^#(\d+) ", tail.stdout, re.MULTILINE)]
    assert sequence == list(range(1, entries + 1)), "one chain, numbered without a gap"


def test_rate_limit_is_shared_by_the_hubs(topology: Topology) -> None:
    sent = 2 * (USER_PER_MINUTE - 1)  # each hub sees fewer than the limit; both, more
    replies = [topology.search("analyst4") for _ in range(sent)]
    per_hub = Counter(r.headers["X-Served-By"] for r in replies)
    assert set(per_hub) == {"hub-1", "hub-2"}, topology.explain(replies)
    assert max(per_hub.values()) < USER_PER_MINUTE, per_hub
    statuses = [r.status for r in replies]
    assert statuses[:USER_PER_MINUTE] == [200] * USER_PER_MINUTE, statuses
    refused = [r for r in replies if r.status != 200]
    assert refused, f"no 429 although {sent} > {USER_PER_MINUTE}: {statuses}"
    # One more may pass if a slot came free meanwhile (one every 60/limit s).
    assert len(refused) >= sent - USER_PER_MINUTE - 1
    for reply in refused:
        assert reply.status == 429
        assert int(reply.headers["Retry-After"]) >= 1
        assert reply.body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


# -- the example configuration in production mode -------------------------------------------------


class _Jwks(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Production:
    url: str
    token: str
    process: Process


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    client = redis_or_skip()
    directory = tmp_path_factory.mktemp("production")
    prefix = f"test:deploy:{uuid.uuid4().hex[:12]}"

    # The identity provider: a key, and its JWKS on loopback.
    idp_key = ec.generate_private_key(ec.SECP256R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(idp_key.public_key(), as_dict=True)
    handler = type("Jwks", (_Jwks,), {"body": json.dumps(
        {"keys": [{**jwk, "kid": "idp-1", "alg": "ES256", "use": "sig"}]}).encode()})  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    jwks_url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"

    # The example, with what cannot be at its real place here: the IdP and the key file.
    signing_key = directory / "hub-signing-key.pem"
    signing_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    text = (DEPLOY / "hub.toml.example").read_text()
    replacements = {
        '"/etc/hub/keys/hub-signing-key.pem"': json.dumps(str(signing_key)),
        '"https://idp.example.org/.well-known/jwks.json"': json.dumps(jwks_url),
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config = directory / "hub.toml"
    config.write_text(text)
    issuer = re.search(r'^issuer = "([^"]+)"', text, re.MULTILINE).group(1)  # type: ignore[union-attr]

    port = free_port()
    env = clean_env(
        REDIS_URL=REDIS_URL,
        HUB_AUDIT_LOG=f"{REDIS_URL}#{prefix}:audit",
        HUB_REDIS_PREFIX=prefix,
        HUB_CACHE_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        HUB_VAR_DIR=str(directory / "var"),
        HUB_PORT=str(port),
        **{name: "placeholder" for name in re.findall(r"\$\{([A-Z0-9_]+)\}", text)},
    )
    hub = Process("hub-production", [hub_executable(), "serve", "--config", str(config)],
                  env=env, cwd=directory)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    now = int(time.time())
    claims = {
        "sub": "analyst1", "name": "Analyst One", "ori": "CA0990000", "state": "CA",
        "roles": ["analyst"], "auth_time": now, "iat": now, "exp": now + 600,
        "iss": issuer, "aud": "hub",
    }  # fmt: skip
    token = jwt.encode(claims, idp_key, algorithm="ES256", headers={"kid": "idp-1"})
    try:
        wait_until("the production hub /healthz", lambda: serving(hub, port), STARTUP_S, hub)
        yield Production(url, token, hub)
    finally:
        stop_all([hub])
        server.shutdown()
        server.server_close()
        thread.join(timeout=STOP_S)
        drop_prefix(client, prefix)
        client.close()


def test_example_config_serves_in_production_mode(production: Production) -> None:
    health = call(f"{production.url}/healthz")
    assert health.body["status"] == "ok", health.body
    assert health.body["mode"] == "production"
    assert health.body["redis"]["state"] == "up"
    # No GraphiQL for a browser.
    page = call(f"{production.url}/graphql", headers={"Accept": "text/html"})
    assert page.status == 405

    headers = {
        "Authorization": f"Bearer {production.token}",
        "X-Purpose": "C",
        "Content-Type": "application/json",
    }
    # The identity provider's token is accepted...
    plain = call(f"{production.url}/graphql", {"query": "{ __typename }"}, headers)
    assert plain.status == 200, plain.body
    assert plain.body["data"] == {"__typename": "Query"}
    # ...and introspection is not answered.
    schema = call(
        f"{production.url}/graphql", {"query": "{ __schema { types { name } } }"}, headers
    )
    assert not (schema.body.get("data") or {}).get("__schema"), schema.body
    messages = [e["message"] for e in schema.body.get("errors", [])]
    assert any("introspection has been disabled" in m for m in messages), schema.body


# -- compose's Redis configuration ----------------------------------------------------------------


def test_redis_conf_is_what_the_audit_stream_needs(tmp_path: Path) -> None:
    """deploy/redis.conf, started by redis-server (its include pointed at a password file made
    here): password required, append-only with fsync always, no eviction."""
    server = need_tool("redis-server", "Debian: apt-get install -y redis-server")
    password = uuid.uuid4().hex
    (tmp_path / "auth.conf").write_text(f"requirepass {password}\n")
    conf = (DEPLOY / "redis.conf").read_text()
    # The container's paths, here: the data directory and the secret's mount point.
    for line, here in {
        "dir /data": f"dir {tmp_path}",
        "include /run/secrets/redis-auth.conf": f"include {tmp_path}/auth.conf",
    }.items():
        assert conf.count(f"\n{line}\n") == 1, line
        conf = conf.replace(f"\n{line}\n", f"\n{here}\n")
    (tmp_path / "redis.conf").write_text(conf)
    port = free_port()
    args = [server, str(tmp_path / "redis.conf"), "--port", str(port), "--bind", "127.0.0.1"]
    process = Process("redis-server", args, env=clean_env(), cwd=tmp_path)
    client = redis.Redis(
        host="127.0.0.1", port=port, password=password, socket_timeout=5, decode_responses=True
    )

    def answers() -> bool:
        # A plain connect first: redis-py retries a refused connection with backoff.
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return False
        return bool(client.ping())

    try:
        wait_until("redis-server", answers, 10.0, process)
        config = client.config_get("*")
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "always"
        assert config["maxmemory-policy"] == "noeviction"
        # Without the password: refused (a raw PING; redis-py would retry with backoff).
        with socket.create_connection(("127.0.0.1", port), timeout=5) as anonymous:
            anonymous.sendall(b"PING\r\n")
            assert anonymous.recv(200).startswith(b"-NOAUTH")
    finally:
        client.close()
        stop_all([process])

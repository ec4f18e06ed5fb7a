"""`manage.py create_access_token USERNAME [--name NAME]` (SPEC §5)."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command

from assistant import services
from assistant.models import AccessToken


def create_token(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_access_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_command_prints_only_the_token_on_one_line(alice):
    out, _ = create_token("alice")

    lines = out.splitlines()
    assert len(lines) == 1
    assert out == lines[0] + "\n"
    assert lines[0].startswith(services.TOKEN_PREFIX)
    assert lines[0] == lines[0].strip()


@pytest.mark.django_db
def test_printed_token_authenticates_as_the_user(alice):
    out, _ = create_token("alice")

    assert services.access_token_authenticate(raw=out.strip()) == alice


@pytest.mark.django_db
def test_command_stores_only_the_hash(alice):
    raw = create_token("alice", "--name", "ci runner")[0].strip()

    token = AccessToken.objects.get(user=alice)
    assert token.name == "ci runner"
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    stored = AccessToken.objects.filter(pk=token.pk).values_list().get()
    assert not any(raw in str(value) for value in stored)


@pytest.mark.django_db
def test_command_gives_a_default_name(alice):
    create_token("alice")

    assert AccessToken.objects.get(user=alice).name == "command line"


@pytest.mark.django_db
def test_command_refuses_an_unknown_user(alice):
    with pytest.raises(CommandError, match="nobody"):
        create_token("nobody")

    assert not AccessToken.objects.exists()


@pytest.mark.django_db
def test_command_warns_on_stderr_for_an_inactive_user(alice):
    alice.is_active = False
    alice.save()

    out, err = create_token("alice")

    assert "inactive" in err
    assert len(out.splitlines()) == 1

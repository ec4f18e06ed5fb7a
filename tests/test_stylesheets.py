"""Each page links only the stylesheets it uses, and every class its templates use is styled."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.template import loader

from assistant import services

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
APP_STYLESHEETS = ["css/base.css", "css/talk.css", "css/pages.css"]

STATIC_LINK = re.compile(
    r"""<link\b[^>]*\brel="stylesheet"[^>]*\bhref="{%\s*static\s+['"]([^'"]+)['"]\s*%}"""
)
SW_LINK = re.compile(r'<link\b[^>]*\brel="stylesheet"[^>]*\bhref="\$\{STATIC\}([^"]+)"')
EXTENDS = re.compile(r"""{%\s*extends\s+['"]([^'"]+)['"]\s*%}""")
INCLUDE = re.compile(r"""{%\s*include\s+['"]([^'"]+)['"]""")
CLASS_ATTR = re.compile(r'\bclass="([^"]*)"')
CLASS_BLOCK = re.compile(r"{%\s*block\s+(?:body|main)_class\s*%}(.*?){%\s*endblock")
# static/js/ui.js h(): { class: "a b" }, { class: cond ? "x" : "y" }, { class: `a a--${role}` }
JS_CLASS = re.compile(r"""\bclass:\s*((?:[^,}"'`]|"[^"]*"|'[^']*'|`[^`]*`)+)""")
JS_CLASSLIST = re.compile(r"""classList\.(?:add|toggle|remove)\(\s*["']([^"']+)["']""")

# Classes that are hooks, not looks: nothing styles them on purpose (tests, JS or the markup's
# own semantics use them), so a missing rule is not a mistake.
UNSTYLED = {
    "btn__label",  # the text of an icon button; the .btn rules style it
    "conversation-card__title",  # inside .conversation-card__link, which styles it
}
# Built from a template variable (`event--{{ item.kind }}`, `message--{{ level_tag }}`): only
# the values the stylesheets name are styled (bubble--user/--model, message--error/--warning);
# the others are hooks. Tokens with `{{` or `${` are therefore skipped below.


class Stylesheets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.hrefs.append(attrs["href"])


def linked(response) -> list[str]:
    assert response.status_code == 200
    parser = Stylesheets()
    parser.feed(response.content.decode())
    return parser.hrefs


def source(name: str) -> str:
    """A template's text: Pastra's own first (DIRS wins over app templates, as in settings)."""
    path = TEMPLATES / name
    return path.read_text() if path.exists() else loader.get_template(name).template.source


def extends_chain(name: str) -> list[str]:
    """The template and every template it extends, child first."""
    chain = [name]
    while match := EXTENDS.search(source(chain[-1])):
        chain.append(match[1])
    return chain


def with_includes(names: list[str]) -> list[str]:
    found, todo = [], list(names)
    while todo:
        name = todo.pop()
        if name not in found:
            found.append(name)
            todo += INCLUDE.findall(source(name))
    return found


def stylesheets_of(name: str) -> set[str]:
    return {
        href for template in extends_chain(name) for href in STATIC_LINK.findall(source(template))
    }


def template_classes(text: str) -> set[str]:
    values = CLASS_ATTR.findall(text) + CLASS_BLOCK.findall(text)
    tokens = set()
    for value in values:
        value = re.sub(r"{{.*?}}", "{{}}", value)
        tokens |= set(re.sub(r"{%.*?%}", " ", value).split())
    return {token for token in tokens if "{{" not in token}


def js_classes(text: str) -> set[str]:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # ui.js documents h() with an example
    values = JS_CLASSLIST.findall(text)
    for expression in JS_CLASS.findall(text):
        values += re.findall(r"""["'`]([^"'`]*)["'`]""", expression)
    return {token for value in values for token in value.split() if "${" not in token}


def defined_classes(stylesheets: set[str]) -> set[str]:
    classes = set()
    for sheet in stylesheets:
        css = re.sub(r"/\*.*?\*/", "", (STATIC / sheet).read_text(), flags=re.S)
        for selector in re.findall(r"([^{};]+)\{", css):
            classes |= set(re.findall(r"\.(-?[A-Za-z_][\w-]*)", selector))
    return classes


def page_templates() -> list[str]:
    found = [*TEMPLATES.glob("assistant/*.html"), *TEMPLATES.glob("account*/**/*.html")]
    pages = [p.relative_to(TEMPLATES).as_posix() for p in found if "/snippets/" not in p.as_posix()]
    return sorted(pages)


# --- Links --------------------------------------------------------------------------------


def test_every_linked_stylesheet_exists():
    links = {
        href for path in TEMPLATES.rglob("*.html") for href in STATIC_LINK.findall(path.read_text())
    }
    links |= set(SW_LINK.findall((STATIC / "sw.js").read_text()))  # the offline page
    assert set(APP_STYLESHEETS) <= links
    missing = sorted(href for href in links if not (STATIC / href).is_file())
    assert not missing, f"linked but not in static/: {missing}"


def test_the_service_worker_caches_every_app_stylesheet():
    sw = (STATIC / "sw.js").read_text()
    shell = re.findall(r'^\s+"([^"]+)",$', sw, re.M)
    assert [path for path in shell if path.endswith(".css")] == APP_STYLESHEETS
    assert SW_LINK.findall(sw) == ["css/base.css"]


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.mark.django_db
def test_talk_page_links_base_and_talk_styles_only(alice_client):
    assert linked(alice_client.get("/")) == ["/static/css/base.css", "/static/css/talk.css"]


@pytest.mark.django_db
def test_history_page_links_base_and_page_styles_only(alice_client):
    assert linked(alice_client.get("/conversations/")) == [
        "/static/css/base.css",
        "/static/css/pages.css",
    ]


@pytest.mark.django_db
def test_record_tokens_delete_and_login_pages_link_what_they_use(alice_client, alice, client):
    conversation = services.conversation_start(user_id=alice.pk, model="gemini-test")
    pages = ["/static/css/base.css", "/static/css/pages.css"]

    assert linked(alice_client.get(f"/conversations/{conversation.pk}/")) == pages
    assert linked(alice_client.get("/settings/tokens/")) == pages
    assert linked(alice_client.get(f"/conversations/{conversation.pk}/delete/")) == [
        "/static/css/base.css"
    ]
    alice_client.logout()
    assert linked(client.get("/accounts/login/")) == ["/static/css/base.css"]


# --- Classes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", page_templates())
def test_every_class_a_page_template_uses_is_in_a_stylesheet_it_links(name):
    stylesheets = stylesheets_of(name)
    assert "css/base.css" in stylesheets, extends_chain(name)
    own = [t for t in with_includes(extends_chain(name)) if (TEMPLATES / t).exists()]
    used = set().union(*(template_classes(source(t)) for t in own))

    missing = sorted(used - defined_classes(stylesheets) - UNSTYLED)

    assert not missing, f"{name} (links {sorted(stylesheets)}) uses unstyled classes: {missing}"


def test_every_class_the_talk_page_scripts_add_is_in_its_stylesheets():
    used = set().union(*(js_classes(path.read_text()) for path in (STATIC / "js").rglob("*.js")))
    assert {"bubble", "card-event", "tool-card", "is-active"} <= used

    missing = sorted(used - defined_classes(stylesheets_of("assistant/talk.html")) - UNSTYLED)

    assert not missing, f"static/js adds unstyled classes: {missing}"


def test_no_rule_is_in_two_stylesheets():
    seen: dict[str, str] = {}
    for sheet in APP_STYLESHEETS:
        css = re.sub(r"/\*.*?\*/", "", (STATIC / sheet).read_text(), flags=re.S)
        rules = re.findall(r"([^{};]+)\{([^{}]*)\}", css)
        for selector, body in rules:
            key = " ".join(f"{selector}{{{body}}}".split())
            assert seen.setdefault(key, sheet) == sheet, f"{key} is in {seen[key]} and {sheet}"

#!/usr/bin/env bash
# Lighthouse mobile scores of the assistant, history and login pages, signed in, with
# production settings (DEBUG=0, WhiteNoise static files). Needs node/npm (fetches lighthouse)
# and Debian's chromium. Usage: bash bench/lighthouse.sh   → prints one line of scores a page.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
port=${PORT:-8799}
export DJANGO_SETTINGS_MODULE=pastra_site.settings DEBUG=0 PASTRA_HTTPS=0
export SECRET_KEY="lighthouse-$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
export ALLOWED_HOSTS=127.0.0.1,localhost DATABASE_URL="sqlite:///$tmp/db.sqlite3"
# DEBUG=0 needs an upstream named; the pages never open a live session while measured.
export PASTRA_UPSTREAM_URL=${PASTRA_UPSTREAM_URL:-ws://127.0.0.1:9}
.venv/bin/python manage.py migrate -v0
.venv/bin/python manage.py collectstatic --noinput -v0
cookie=$(.venv/bin/python -c "
import django; django.setup()
from django.test import Client
from assistant.models import User
user, _ = User.objects.get_or_create(username='lighthouse')
client = Client(); client.force_login(user); print(client.cookies['sessionid'].value)")
.venv/bin/daphne -b 127.0.0.1 -p "$port" pastra_site.asgi:application >"$tmp/daphne.log" 2>&1 &
server=$!
trap 'kill $server; rm -rf "$tmp"' EXIT
sleep 4
[ -x "$tmp/node_modules/.bin/lighthouse" ] || npm install --silent --prefix "$tmp" lighthouse@12 >/dev/null
for path in / /conversations/ /accounts/login/; do
  CHROME_PATH=$(command -v chromium) "$tmp/node_modules/.bin/lighthouse" "http://127.0.0.1:$port$path" \
    --quiet --chrome-flags="--headless=new --no-sandbox --use-fake-ui-for-media-stream" \
    --extra-headers="{\"Cookie\":\"sessionid=$cookie\"}" \
    --only-categories=performance,accessibility,best-practices,seo \
    --output=json --output-path="$tmp/report.json" >/dev/null 2>&1
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], d['configSettings']['formFactor'], {k: round(v['score']*100) for k, v in d['categories'].items()})" "$tmp/report.json" "$path"
done

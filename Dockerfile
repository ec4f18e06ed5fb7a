# Pastra web image (compose and Cloud Run). Slim, non-root, static files collected at build.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=pastra_site.settings \
    PORT=8000

RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 pastra

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=pastra:pastra . .
# collectstatic needs settings but no secrets or database.
RUN DEBUG=1 python manage.py collectstatic --noinput --verbosity 0

USER pastra
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/healthz" || exit 1

# Cloud Run sets PORT; migrations run as a separate job/step (see docs).
# WebSocket settings and why: docs/asgi-server.md.
CMD ["sh", "-c", "exec daphne -b 0.0.0.0 -p ${PORT} --proxy-headers --websocket_timeout 86400 --websocket_connect_timeout 15 --ping-interval 20 --ping-timeout 30 --websocket-max-message-size 1048576 --websocket-max-frame-size 1048576 pastra_site.asgi:application"]

# Pastra images (compose and Cloud Run). Slim, non-root, static files collected at build.
#   docker build .                    → the web image (the default, last target: `web`)
#   docker build --target emulator .  → the Gemini Live emulator, with its speech synthesizer
# The web image does not carry the emulator's voice (espeak-ng): it never runs the emulator.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=pastra_site.settings \
    PORT=8000

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 pastra

WORKDIR /app
COPY requirements.lock .
RUN pip install --require-hashes -r requirements.lock

COPY --chown=pastra:pastra . .
# collectstatic needs settings but no secrets, database or upstream.
RUN DEBUG=1 python manage.py collectstatic --noinput --verbosity 0


FROM base AS emulator
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
USER pastra
EXPOSE 9100
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:9100/stats" || exit 1
CMD ["python", "-m", "gemini_emulator", "--host", "0.0.0.0", "--port", "9100"]


FROM base AS web
USER pastra
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/healthz" || exit 1

# Cloud Run sets PORT; migrations run as a separate job/step (see docs).
# uvicorn, through Pastra's launcher (its WebSocket settings, drain and fixes: pastra_site/serve.py);
# why uvicorn here and daphne in `make run`: docs/asgi-server.md.
CMD ["sh", "-c", "exec python -m pastra_site.serve --host 0.0.0.0 --port ${PORT}"]

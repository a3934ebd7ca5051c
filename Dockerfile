# The Python service of a Supabase deployment (README, "Deploying on Supabase"): `trove serve` by default,
# `trove worker` from the same image. Installed editable so the checkout's layout (supabase/migrations/, for
# `trove db migrate`) is where the code expects it. Configured entirely by environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TROVE_STATE_DIR=/var/lib/trove \
    TROVE_HTTP_PORT=54321

WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY supabase/migrations ./supabase/migrations
RUN pip install -e . \
    && useradd --system --uid 10001 --home-dir /var/lib/trove --create-home trove

USER trove
EXPOSE 54321
# /health answers 200 while the service reaches its database, 503 when it cannot (urlopen raises then).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TROVE_HTTP_PORT', '54321') + '/health', timeout=4)"]
CMD ["trove", "serve", "--host", "0.0.0.0"]

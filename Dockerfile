# Images for the Provider (the default target) and the local compute engine (target `engine`):
#
#   docker build -t ocean-provider .
#   docker build --target engine -t ocean-provider-engine .
#
# Settings come from the environment only (README "Settings"); config.ini is not copied, so
# nothing falls back to the development defaults. Mount one at /app/config.ini to use a file.
# compose.yaml runs both with Redis; README "Deploy" says what the engine needs from the host.

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies first: a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
# setup.py reads requirements-dev.txt for its `dev` extra; the extra is not installed.
COPY setup.py pyproject.toml requirements-dev.txt ./
COPY ocean_provider ./ocean_provider
RUN pip install --no-cache-dir --no-deps . && rm -rf /src
WORKDIR /app
# ocean-contracts' address.json (every public network Ocean is deployed on) is installed at
# /usr/local/lib/python3.11/site-packages/addresses/address.json: point ADDRESS_FILE at it.


# The engine runs as root: it starts bubblewrap as root and drops each job to a host uid of
# its own (2000000000-2000065535) with setpriv (util-linux, already in the base image).
# It needs CAP_SYS_ADMIN and unconfined seccomp, AppArmor and /proc (README "Deploy").
FROM base AS engine
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap libseccomp2 \
    && rm -rf /var/lib/apt/lists/*
COPY engine-environments.json /etc/ocean-engine/environments.json
ENV ENGINE_STORAGE=/var/lib/ocean-engine \
    ENVIRONMENTS_FILE=/etc/ocean-engine/environments.json
RUN mkdir -p /var/lib/ocean-engine
VOLUME ["/var/lib/ocean-engine"]
EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/api/v1/operator/health', timeout=4)"]
ENTRYPOINT ["ocean-provider"]
CMD ["engine", "--bind", "0.0.0.0:8050"]


# The Provider: gunicorn (2 workers x 4 threads) as an unprivileged user.
FROM base AS provider
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/ocean-provider \
        --shell /usr/sbin/nologin provider \
    && mkdir -p /var/lib/ocean-provider \
    && chown provider:provider /var/lib/ocean-provider
# The nonce store, order ledger and DDO index (SQLite), unless REDIS_CONNECTION takes the first two.
ENV STORAGE_PATH=/var/lib/ocean-provider/ocean-provider.db
VOLUME ["/var/lib/ocean-provider"]
USER 10001:10001
EXPOSE 8030
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8030/', timeout=4)"]
ENTRYPOINT ["ocean-provider"]
CMD ["serve", "--bind", "0.0.0.0:8030", "--workers", "2"]

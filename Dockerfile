# The loyalty service image: `loyalty worker`, `loyalty api`, the CLI jobs (close-month,
# migrate, segments, retention) and the compose stack's checkout simulator.
#
#   docker build -t loyalty:0.1.0 .        (docker compose builds it as the services' image)
#
# Settings come from LOYALTY_* environment variables (see stream/settings.py); the image
# holds no secrets and no .env file.
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/loyalty/src
# The locked dependencies first (their own layer, rebuilt only when the lock changes), every
# file checked against its hash: the service's own, not the development stack of the `demo`
# extra (embedded Kafka, Valkey, chdb), which production never runs. `make lock` writes it.
COPY requirements/lock.txt ./requirements/lock.txt
RUN pip install --require-hashes -r requirements/lock.txt
# What the package is made of (see [tool.setuptools] in pyproject.toml), nothing else; its
# dependencies are already there, as locked.
COPY pyproject.toml ./
COPY models ./models
COPY stream ./stream
COPY agents ./agents
RUN pip install --no-deps . \
    && pip check \
    && rm -rf /opt/loyalty/src \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/loyalty --create-home loyalty

# A working directory of its own: Settings also reads a .env from the working directory.
WORKDIR /var/lib/loyalty
USER 10001:10001
EXPOSE 8080 9108
CMD ["loyalty", "worker"]

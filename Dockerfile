# kronwheel: one image for every role (`kronwheel processor|dispatcher|api|topics|replay|status`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY infra ./infra
COPY streams ./streams
RUN pip install '.[cassandra]' && rm -rf /src

# Never run as root; the data directory holds the processors' local index.
RUN useradd --system --uid 10001 --home-dir /var/lib/kronwheel --create-home kronwheel
USER kronwheel
WORKDIR /var/lib/kronwheel
ENV KRONWHEEL_DATA_DIR=/var/lib/kronwheel

ENTRYPOINT ["kronwheel"]
CMD ["--help"]

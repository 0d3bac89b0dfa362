# The OCPP adapter service image. Built by `cdk deploy` (ContainerImage.from_asset of the repo root);
# .dockerignore limits the context to the runtime code, so unrelated changes do not rebuild the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Runtime pins only: requirements.txt also pins the CDK toolchain, which the service never imports.
COPY requirements.txt ./
RUN grep -viE '^(aws-cdk-lib|constructs|cdk-nag)==' requirements.txt > /tmp/runtime.txt \
    && pip install -r /tmp/runtime.txt \
    && rm /tmp/runtime.txt

# Amazon DocumentDB requires TLS with the Amazon RDS CA bundle (path used by infra/data.py).
ADD https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
RUN chmod 644 /etc/ssl/certs/rds-global-bundle.pem

COPY . /app
# Non-root; var/ is where the default embedded store writes when no STORE_URL is given.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app adapter \
    && mkdir -p /app/var && chown adapter /app/var
USER 10001

# WebSocket (OCPP) and /healthz, /readyz, /metrics share this port.
EXPOSE 9000
# No curl in the slim image: probe with the standard library (urlopen raises on non-2xx).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:9000/healthz', timeout=4)"]

CMD ["python", "-m", "adapter", "serve"]

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir .
EXPOSE 8030
# Settings come from the environment (NETWORK_URL, PROVIDER_PRIVATE_KEY, OPERATOR_SERVICE_URL, ...).
CMD ["gunicorn", "--bind", "0.0.0.0:8030", "--workers", "2", "--timeout", "120", "ocean_provider.wsgi:provider_app()"]

# One image for every Podium service (web, worker, beat, migrations); the command picks the role.
#   CPU image (web, beat, CPU workers):  docker build -t podium .
#   GPU image (GPU workers):             docker build -t podium-gpu \
#                                          --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
# Secrets never go into the image: every PODIUM_* setting and AWS_* credential comes from the environment.
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PODIUM_DATA_DIR=/var/lib/podium \
    PODIUM_ENV=production

# libseccomp: the scoring sandbox's system-call filter (pyseccomp loads it with ctypes).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libseccomp2 \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 podium
WORKDIR /app

# torch first, from the index that matches the image (CPU or CUDA), at exactly the version pyproject.toml pins;
# then the package itself with the dependencies pyproject.toml declares, at the versions constraints.txt pins.
COPY pyproject.toml README.md constraints.txt ./
RUN pip install --index-url "$TORCH_INDEX_URL" \
      "$(python -c "import tomllib; print(next(d for d in tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'] if d.replace(' ', '').startswith('torch=')))")"
COPY podium ./podium
COPY server ./server
COPY worker ./worker
COPY challenges ./challenges
COPY migrations ./migrations
# A regular (non-editable) install: migrations and templates ship inside the package, and the sources are
# removed so nothing imports from /app by accident.
RUN pip install -c constraints.txt . \
 && rm -rf /app/podium /app/server /app/worker /app/challenges /app/migrations /app/build \
 && mkdir -p /var/lib/podium \
 && chown podium:podium /var/lib/podium

USER podium
VOLUME ["/var/lib/podium"]
EXPOSE 8000
CMD ["podium", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"]

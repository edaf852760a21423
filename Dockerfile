# Image for every Make Us Rich process (web, worker, trainer, beat); docker-compose.yml picks the command.

# Chart.js comes from the npm registry at build time, as in scripts/setup (never committed).
FROM node:22-slim AS static
WORKDIR /build
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# The CPU build of torch first: PyPI's default Linux wheel pulls in gigabytes of CUDA libraries.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements.txt ./
RUN pip install "$(grep -E '^torch==' requirements.txt)" --index-url "$TORCH_INDEX_URL" \
 && pip install -r requirements.txt

COPY . .
COPY --from=static /build/node_modules/chart.js/dist node_modules/chart.js/dist

# The manifest storage of production needs collectstatic with the production settings; the key and
# hosts here exist only for this build step and are not kept in the image.
RUN DJANGO_SETTINGS_MODULE=mur_site.settings.production \
    DJANGO_SECRET_KEY=collectstatic-build-only \
    DJANGO_ALLOWED_HOSTS=localhost \
    MUR_FERNET_KEYS=Y29sbGVjdHN0YXRpYy1idWlsZC1vbmx5LWtleS0wMDA= \
    python manage.py collectstatic --noinput -v 0

RUN useradd --create-home --uid 1000 mur && mkdir -p var && chown -R mur:mur var
USER mur

EXPOSE 8000
CMD ["gunicorn", "mur_site.wsgi:application", "--bind", "0.0.0.0:8000"]

# syntax=docker/dockerfile:1
# The `web` image: Node builds the page, Nginx serves it with deploy/nginx.conf and proxies the
# API to the `backend` service. Build from the repository root (docker-compose.yml does this):
#   docker build -f deploy/web.Dockerfile -t localchat-web .

# ---- Build the page (frontend/dist) ------------------------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# ---- Serve it --------------------------------------------------------------------------
FROM nginx:1.28-alpine
# The image's own nginx.conf includes conf.d/*.conf inside its http block; ours replaces the
# stock site. Its access log at /var/log/nginx/access.log goes to the container's stdout.
COPY deploy/nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=build /src/frontend/dist /usr/share/nginx/html
EXPOSE 80
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]

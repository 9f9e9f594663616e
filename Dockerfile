# One image for both ward roles: `ward gateway` and `ward agent` (see docker-compose.yml).
FROM node:20-bookworm-slim
# Native addons (better-sqlite3, ssh2's crypto) build from source; openssl makes demo certs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN npm install -g pnpm@9.15.9
WORKDIR /opt/ward
COPY . .
RUN pnpm install --frozen-lockfile
USER node
ENTRYPOINT ["node", "/opt/ward/packages/cli/bin/ward.js"]

# The service runs its TypeScript directly (Node 24 type stripping): no build step.
FROM node:24-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/app/data

WORKDIR /app

# Dependencies first, so that they stay cached while only the code changes. The `node` package
# among the dev dependencies is not needed here: the base image is Node 24. No install scripts
# are needed by the runtime dependencies.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

COPY . .

# Keys and read models live in DATA_DIR: a volume, writable by the unprivileged user.
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]
USER node

EXPOSE 8000
CMD ["node", "src/main.ts"]

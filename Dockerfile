# syntax=docker/dockerfile:1
# matrix-whatsapp-interop: build on node:24-slim, run as a non-root user with state in /data.
# The product image has no gatekeeper simulator (run it with interop.mode: external); the demo image,
# `docker build --build-arg EMBEDDED=1 .`, adds it for interop.mode: embedded and its page.

FROM node:24-slim AS build
ARG EMBEDDED=0
WORKDIR /app
# sqlite3 is compiled from source (.prebuild-installrc: buildFromSource) against the image's own
# Node headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json .prebuild-installrc ./
COPY vendor ./vendor
# Install without scripts, then drop the `node` devDependency (it provides Node 24 on machines
# that lack it; this image has it) and build the one native addon the bridge needs. The root
# package's prepare step (tsc) runs below, once the sources are in.
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && rm -rf node_modules/node node_modules/.bin/node \
 && npm rebuild sqlite3
COPY tsconfig.json tsconfig.build.json tsconfig.embedded.json ./
COPY src ./src
COPY simulator ./simulator
COPY migrations ./migrations
# Only the demo image compiles the simulator and keeps its page (static files tsc does not copy);
# /app/extra is what the final stage adds to /app either way (empty for the product).
RUN mkdir -p extra \
 && if [ "$EMBEDDED" = 1 ]; then \
      npx --no-install tsc -p tsconfig.embedded.json \
      && mkdir -p extra/simulator && cp -r simulator/web extra/simulator/; \
    else npx --no-install tsc -p tsconfig.build.json; fi \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/vendor ./vendor
COPY bin ./bin
COPY --from=build /app/extra ./
COPY package.json config.sample.yaml ./
# /data holds config.yaml, registration.yaml, the encryption key and the SQLite database; paths in
# the config are relative to it.
RUN mkdir /data && chown node:node /data
VOLUME /data
WORKDIR /data
USER node
EXPOSE 29330
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.MWI_HEALTH_PORT||29330)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/matrix-whatsapp-interop.js"]
CMD ["-c", "/data/config.yaml", "-f", "/data/registration.yaml"]

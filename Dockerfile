# braze-bridge image: one image, three roles (api, worker, migrate) chosen by the command.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    BRAZE_BRIDGE_HOST=0.0.0.0 BRAZE_BRIDGE_PORT=8000
RUN useradd --system --create-home --uid 10001 bridge \
 && mkdir -p /var/lib/braze-bridge/metrics && chown -R bridge /var/lib/braze-bridge
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
USER bridge
WORKDIR /home/bridge
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["braze-bridge"]
CMD ["api"]

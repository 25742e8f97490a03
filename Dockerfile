# bids-fcd BIDS App image.
#   docker build -t bids-fcd:0.1.0 .
#   docker run --rm --gpus all -v /data/bids:/data:ro -v /data/out:/out bids-fcd:0.1.0 /data /out participant
# The image pins every Python dependency (requirements.lock). The default torch pin is the CPU build; for
# GPUs build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 (the same torch version).
FROM python:3.11-slim-bookworm

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=""
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 MPLBACKEND=Agg BIDS_FCD_MODELS=/opt/bids-fcd/models

RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/bids-fcd
COPY requirements.lock setup.cfg pyproject.toml README.md run.py ./
RUN if [ -n "$TORCH_INDEX" ]; then pip install torch==${TORCH_VERSION} --index-url "$TORCH_INDEX"; \
    else pip install torch==${TORCH_VERSION}; fi \
 && pip install -r requirements.lock
COPY bids_fcd ./bids_fcd
COPY models ./models
RUN pip install --no-deps . && bids-fcd --version \
 && python -c "import nilearn.datasets as d; d.load_mni152_template(resolution=2)"

ENTRYPOINT ["bids-fcd"]

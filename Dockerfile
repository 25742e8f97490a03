# bids-fcd BIDS App image: a multi-stage build, no BuildKit features (works with the classic builder).
#
#   GPU (default; the ordinary torch wheel from the package index bundles the CUDA libraries):
#     docker build -t bids-fcd:0.1.0 .
#     docker run --rm --gpus all -v /data/bids:/data:ro -v /data/out:/out bids-fcd:0.1.0 /data /out participant
#   CPU only (about 5 GB smaller), torch from the PyTorch CPU wheel index:
#     docker build --build-arg TORCH_FLAVOR=cpu -t bids-fcd:0.1.0-cpu .
#   CPU only, offline torch: put the cp311 CPU wheel in .docker-extra/wheels/ (git-ignored) first:
#     pip download --no-deps torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu -d .docker-extra/wheels
#   Behind a proxy with its own CA: copy the CA bundle to .docker-extra/ca.pem and add
#     --network host --build-arg PIP_CERT=/tmp/build-extra/ca.pem [--build-arg PIP_INDEX_URL=...]
#   Both are used by the builder stage only; the final stage copies the virtual environment (with the model)
#   and never sees the certificate, the index URL or the wheels (scripts/docker-smoke.sh checks this).
# See docs/containers.md (Apptainer, SLURM, read-only root, model mounts) and scripts/docker-smoke.sh.

FROM debian:bookworm-slim AS builder

# cuda: torch==TORCH_VERSION from the package index (pulls its pinned nvidia-* and triton wheels).
# cpu:  the CPU-only build: a torch wheel from .docker-extra/wheels/ if present, else TORCH_CPU_INDEX.
ARG TORCH_FLAVOR=cuda
ARG TORCH_VERSION=2.13.0
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
# Builder-only pip settings (empty: pip's defaults). Never declared in the final stage.
ARG PIP_INDEX_URL=""
ARG PIP_CERT=""
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/bids-fcd/venv
ENV PATH=/opt/bids-fcd/venv/bin:$PATH

WORKDIR /src
# .docker-extra/ is optional (git-ignored): the bracket pattern matches nothing when it is absent.
COPY requirements.lock .docker-extr[a] /tmp/build-extra/
# requirements.lock marks test-only pins with "# test"; the image installs the rest, each exactly pinned.
RUN set -eu; \
    [ -n "${PIP_CERT:-}" ] || unset PIP_CERT; \
    [ -n "${PIP_INDEX_URL:-}" ] || unset PIP_INDEX_URL; \
    case "$TORCH_FLAVOR" in \
      cuda) pip install "torch==${TORCH_VERSION}" ;; \
      cpu) if ls /tmp/build-extra/wheels/torch-"${TORCH_VERSION}"*-cp311-*.whl >/dev/null 2>&1; then \
             pip install --no-deps /tmp/build-extra/wheels/torch-"${TORCH_VERSION}"*-cp311-*.whl; \
           else \
             pip install --no-deps --index-url "$TORCH_CPU_INDEX" "torch==${TORCH_VERSION}"; \
           fi ;; \
      *) echo "TORCH_FLAVOR must be cuda or cpu, not '$TORCH_FLAVOR'" >&2; exit 2 ;; \
    esac; \
    grep -v '# test$' /tmp/build-extra/requirements.lock > /tmp/requirements-image.txt; \
    pip install -r /tmp/requirements-image.txt; \
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

COPY setup.cfg pyproject.toml README.md run.py ./
COPY bids_fcd ./bids_fcd
RUN set -eu; \
    [ -n "${PIP_CERT:-}" ] || unset PIP_CERT; \
    [ -n "${PIP_INDEX_URL:-}" ] || unset PIP_INDEX_URL; \
    pip install --no-deps . \
 && pip check \
 && find /opt/bids-fcd/venv -path '*/torch-*.dist-info/direct_url.json' -delete \
 && rm -rf /tmp/build-extra /src/build
# The shipped model is package data (installed once, inside the package); /opt/bids-fcd/models stays an
# empty folder for a mounted folder of models (BIDS_FCD_MODELS, searched first by name).
RUN set -eu; \
    shipped="$(python -c 'from bids_fcd.nets.locate import packaged_models; print(packaged_models())')"; \
    rm -f "$shipped"/*/checkpoint.pt; \
    cd "$shipped/phantom-default" && sha256sum -c SHA256SUMS; \
    mkdir -p /opt/bids-fcd/models


FROM debian:bookworm-slim

# Keep equal to bids_fcd.__version__ (tests/test_packaging.py checks it; the build checks it below).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="bids-fcd" \
      org.opencontainers.image.description="BIDS App: focal cortical dysplasia localisation from T1w + FLAIR by guided-diffusion pseudo-healthy synthesis" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/bids-fcd/bids-fcd" \
      org.opencontainers.image.url="https://github.com/bids-fcd/bids-fcd" \
      org.opencontainers.image.documentation="https://github.com/bids-fcd/bids-fcd/blob/main/docs/containers.md" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 libgomp1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && useradd --uid 1000 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin bidsfcd \
 && mkdir -m 1777 /bids-fcd-work

COPY --from=builder /opt/bids-fcd /opt/bids-fcd

# Everything the app, matplotlib, nilearn, torch and pybids write goes under /tmp, so the image runs with
# --read-only --tmpfs /tmp and any --user. Thread counts are not set here: the app follows the CPUs the
# container may use (affinity / cgroup quota); pass --nprocs/--omp-nthreads or OMP_NUM_THREADS to override.
ENV PATH=/opt/bids-fcd/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    BIDS_FCD_MODELS=/opt/bids-fcd/models \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    MPLCONFIGDIR=/tmp/.config/matplotlib \
    MPLBACKEND=Agg \
    NILEARN_DATA=/tmp/nilearn_data \
    TORCH_HOME=/tmp/.cache/torch \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BIDS_FCD_CONTAINER=docker \
    BIDS_FCD_IMAGE=bids-fcd:${VERSION} \
    BIDS_FCD_WORK_DIR=/tmp/bids-fcd-work

# The templates come from nilearn's own package data (nothing is downloaded at run time); check that here,
# with the network-free, read-only-friendly settings above, and that the version matches the label.
RUN test "$(bids-fcd --version)" = "bids-fcd ${VERSION}" \
 && python -c "from bids_fcd.atlas import load_template; [load_template(r) for r in (1, 2)]" \
 && rm -rf /tmp/.cache /tmp/.config /tmp/nilearn_data

USER 1000:1000
WORKDIR /tmp
ENTRYPOINT ["bids-fcd"]
CMD ["--help"]

#!/usr/bin/env bash
# Build the CPU image and run the BIDS App in it the way users do, then check the results.
#
#   sudo bash scripts/docker-smoke.sh            (root: it may install and start a Docker engine)
#
# Idempotent. Steps: start a Docker engine if none answers (installing docker.io if needed) -> build a
# local debian:bookworm-slim with debootstrap if the image is missing (for machines without a registry)
# -> fetch the CPU torch wheel into .docker-extra/wheels -> build bids-fcd:<version>-cpu -> check that no
# CA bundle, index URL or build argument reached the final image (docker history --no-trunc, image config,
# and a search of the exported file system) -> write a phantom BIDS dataset on the host -> run the
# participant and then the group level in the container with --read-only --tmpfs /tmp --network none, a
# non-root --user, the dataset mounted read-only -> check the expected derivatives
# (tests/data/expected_outputs.txt + group_summary.tsv), the ownership of the outputs and that the input
# tree is byte-identical -> print build time, image size and run times.
#
# The image is built from this directory as it is, uncommitted edits included: to test a commit, run the
# script from a clean tree, e.g.  git archive HEAD | tar -x -C /tmp/clean && BIDS_FCD_VENV=$PWD/.venv
# sudo -E bash /tmp/clean/scripts/docker-smoke.sh
#
# Nothing about this machine is stored in the repository: the apt mirror, the pip CA bundle and index
# are read from the machine's apt and pip configuration at run time.
#
# Environment (all optional):
#   SMOKE_DIR     scratch directory (default /tmp/bids-fcd-smoke; wiped at each run)
#   SMOKE_USER    uid:gid inside the container (default: the caller's, or 1000:1000 when run as root)
#   TORCH_VERSION torch version (default 2.13.0)
#   KEEP_ENGINE=1 leave a Docker engine this script started running afterwards
#   SKIP_BUILD=1  reuse an existing image (still checked)
#   BIDS_FCD_VENV virtual environment whose bids-fcd writes the phantom (default ./.venv; without one the
#                 image writes it)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

SMOKE_DIR="${SMOKE_DIR:-/tmp/bids-fcd-smoke}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
EXTRA="$REPO/.docker-extra"          # git-ignored; the builder stage's optional inputs
BASE_IMAGE="debian:bookworm-slim"
if [ -z "${SMOKE_USER:-}" ]; then
  if [ "$(id -u)" = 0 ]; then SMOKE_USER="1000:1000"; else SMOKE_USER="$(id -u):$(id -g)"; fi
fi
RUN_UID="${SMOKE_USER%%:*}"
RUN_GID="${SMOKE_USER##*:}"

log() { printf '[smoke %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
warn() { log "WARNING: $*"; WARNINGS=$((WARNINGS + 1)); }
WARNINGS=0
STARTED_ENGINE_PID=""
ROOTFS=""

cleanup() {
  rm -f "$EXTRA/ca.pem"
  [ -z "$ROOTFS" ] || rm -rf "$ROOTFS"
  if [ -n "$STARTED_ENGINE_PID" ] && [ "${KEEP_ENGINE:-0}" != 1 ]; then
    log "stopping the Docker engine this script started (pid $STARTED_ENGINE_PID)"
    kill "$STARTED_ENGINE_PID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$STARTED_ENGINE_PID" 2>/dev/null || break; sleep 1; done
  fi
}
trap cleanup EXIT

need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (run: sudo bash scripts/docker-smoke.sh)"; }

# ---------------------------------------------------------------- version
VERSION="$(PYTHONPATH="$REPO" python3 -c 'import bids_fcd; print(bids_fcd.__version__)' 2>/dev/null \
  || sed -n 's/^__version__ = "\(.*\)"$/\1/p' bids_fcd/__init__.py)"
[ -n "$VERSION" ] || die "could not read bids_fcd.__version__"
IMAGE="bids-fcd:${VERSION}-cpu"
log "bids-fcd $VERSION -> image $IMAGE; container user $SMOKE_USER; scratch $SMOKE_DIR"

# ---------------------------------------------------------------- engine
if ! docker info >/dev/null 2>&1; then
  need_root "starting a Docker engine"
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (log: $SMOKE_DIR.dockerd.log)"
    nohup dockerd >"$SMOKE_DIR.dockerd.log" 2>&1 &
    STARTED_ENGINE_PID=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || die "dockerd did not answer within 60 s; see $SMOKE_DIR.dockerd.log"
  fi
fi
log "Docker engine: server $(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?')"

# ---------------------------------------------------------------- base image
apt_mirror() {
  # The first Debian archive URI of the machine's apt sources (deb822 *.sources, then one-line lists).
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri="$(awk '/^URIs:/{for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f")"
    if [ -n "$uri" ] && grep -qE '^Suites:.*bookworm' "$f"; then echo "$uri"; return; fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri="$(awk '$1 == "deb" && $0 ~ /bookworm/ && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' "$f")"
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
}

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE present"
elif docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE pulled from the registry"
else
  need_root "building the base image"
  command -v debootstrap >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  MIRROR="$(apt_mirror)"
  [ -n "$MIRROR" ] || die "no Debian mirror found in the apt sources; set up apt or pull $BASE_IMAGE"
  ROOTFS="$(mktemp -d /tmp/bookworm-rootfs.XXXXXX)"
  log "no registry: building $BASE_IMAGE with debootstrap --variant=minbase from the machine's apt mirror"
  debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$SMOKE_DIR.debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $SMOKE_DIR.debootstrap.log"
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  tar -C "$ROOTFS" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$ROOTFS"; ROOTFS=""
fi

# ---------------------------------------------------------------- pip settings of this machine
pip_setting() {  # value of a pip option: PIP_<NAME> in the environment, else `pip config list`
  local key="$1" envname
  envname="PIP_$(echo "$key" | tr 'a-z-' 'A-Z_')"
  if [ -n "${!envname:-}" ]; then echo "${!envname}"; return; fi
  python3 -m pip config list 2>/dev/null \
    | sed -n "s/^\(global\|install\|download\|:env:\)\.${key}='\(.*\)'\$/\2/p" | head -1
}
PIP_CERT_HOST="$(pip_setting cert || true)"
PIP_INDEX_HOST="$(pip_setting index-url || true)"
BUILD_ARGS=(--build-arg TORCH_FLAVOR=cpu --build-arg "TORCH_VERSION=$TORCH_VERSION" --build-arg "VERSION=$VERSION")
mkdir -p "$EXTRA/wheels"
if [ -n "$PIP_CERT_HOST" ] && [ -f "$PIP_CERT_HOST" ]; then
  cp "$PIP_CERT_HOST" "$EXTRA/ca.pem"        # removed again on exit
  BUILD_ARGS+=(--build-arg PIP_CERT=/tmp/build-extra/ca.pem)
  log "pip CA bundle from the machine's pip configuration -> builder stage only"
fi
if [ -n "$PIP_INDEX_HOST" ]; then
  BUILD_ARGS+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_HOST")
  log "pip index from the machine's pip configuration -> builder stage only"
fi

# ---------------------------------------------------------------- CPU torch wheel
torch_wheel() {  # the first cp311 torch wheel in .docker-extra/wheels, or nothing
  local w
  for w in "$EXTRA"/wheels/torch-"$TORCH_VERSION"*-cp311-*.whl; do [ -f "$w" ] && { echo "$w"; return; }; done
}
if [ -n "$(torch_wheel)" ]; then
  log "CPU torch wheel present: $(basename "$(torch_wheel)")"
else
  log "fetching the CPU torch $TORCH_VERSION wheel (cp311)"
  dl=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11
      --platform manylinux_2_28_x86_64 -d "$EXTRA/wheels" "torch==$TORCH_VERSION")
  (cd /tmp && "${dl[@]}" --index-url https://download.pytorch.org/whl/cpu --timeout 20 --retries 1) 2>/dev/null \
    || (cd /tmp && "${dl[@]}") || die "could not download torch==$TORCH_VERSION"
  [ -n "$(torch_wheel)" ] || die "no cp311 torch wheel fetched"
fi
case "$(basename "$(torch_wheel)")" in
  *+cpu*) ;;
  *) warn "the torch wheel in $EXTRA/wheels is not tagged +cpu; the image may need CUDA libraries" ;;
esac

# ---------------------------------------------------------------- build
BUILD_S=0
if [ "${SKIP_BUILD:-0}" = 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "SKIP_BUILD=1: reusing $IMAGE"
else
  mkdir -p "$SMOKE_DIR"
  log "docker build $IMAGE (log: $SMOKE_DIR.build.log)"
  t0=$(date +%s)
  docker build --network host "${BUILD_ARGS[@]}" -t "$IMAGE" . >"$SMOKE_DIR.build.log" 2>&1 \
    || { tail -40 "$SMOKE_DIR.build.log" >&2; die "docker build failed; see $SMOKE_DIR.build.log"; }
  BUILD_S=$(( $(date +%s) - t0 ))
fi
rm -f "$EXTRA/ca.pem"
SIZE_B="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
SIZE_MB=$(( SIZE_B / 1000000 ))

# ---------------------------------------------------------------- fresh scratch directory
rm -rf "$SMOKE_DIR"
mkdir -p "$SMOKE_DIR"
BIDS="$SMOKE_DIR/bids"; OUT="$SMOKE_DIR/derivatives"; WORK="$SMOKE_DIR/work"

# ---------------------------------------------------------------- image metadata and secrets
log "checking the image configuration and history"
[ "$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.version"}}' "$IMAGE")" = "$VERSION" ] \
  || die "label org.opencontainers.image.version is not $VERSION"
cfg_user="$(docker image inspect -f '{{.Config.User}}' "$IMAGE")"
case "$cfg_user" in ""|0|0:*|root|root:*) die "the image runs as root (USER '$cfg_user')";; esac
[ "$(docker image inspect -f '{{json .Config.Entrypoint}}' "$IMAGE")" = '["bids-fcd"]' ] || die "ENTRYPOINT is not [\"bids-fcd\"]"
docker run --rm --network none "$IMAGE" --version | grep -qx "bids-fcd $VERSION" || die "bids-fcd --version is not $VERSION"

docker history --no-trunc "$IMAGE" >"$SMOKE_DIR/history.txt"
docker image inspect "$IMAGE" >"$SMOKE_DIR/inspect.json"
patterns="$SMOKE_DIR/forbidden-strings.txt"
{
  echo "PIP_CERT"; echo "PIP_INDEX_URL"; echo "build-extra"; echo ".docker-extra"; echo "ca.pem"
  [ -z "$PIP_CERT_HOST" ] || echo "$PIP_CERT_HOST"
  [ -z "$PIP_INDEX_HOST" ] || echo "$PIP_INDEX_HOST"
  for k in extra-index-url find-links trusted-host; do
    for u in $(pip_setting "$k" || true); do echo "$u"; done
  done
} | sort -u | grep -v '^$' >"$patterns"
if grep -nF -f "$patterns" "$SMOKE_DIR/history.txt" "$SMOKE_DIR/inspect.json"; then
  die "the image history or configuration names the pip CA bundle, an index or a build argument (above)"
fi
log "docker history --no-trunc / inspect: none of $(wc -l <"$patterns") build-only strings found"

log "searching the image's file system for the CA bundle and index URLs"
# The host side decides what to look for; the image's own python3 then reads every file of the image's
# root file system (not the /check mount: -xdev) in a throw-away container, so nothing is exported.
CHECK="$SMOKE_DIR/check"
mkdir -p "$CHECK"
# Index URLs and build-only names. The CA bundle's path is a standard one that libraries mention, so
# the bundle is searched for by content instead: the exact file, and certificate by certificate (whole
# PEM bodies) every one of it that is not in the public Mozilla set as this host's Debian
# ca-certificates (else pip/certifi) ships it: the site's own CA (on Debian, what
# /usr/local/share/ca-certificates added).
grep -v -e '^PIP_' -e '^ca\.pem$' "$patterns" | grep -vxF -e "${PIP_CERT_HOST:-/nonexistent}" >"$CHECK/strings.txt" || true
: >"$CHECK/site-certs.txt"; : >"$CHECK/bundle.sha256"
if [ -n "$PIP_CERT_HOST" ] && [ -f "$PIP_CERT_HOST" ]; then
  echo "$(stat -c %s "$PIP_CERT_HOST") $(sha256sum <"$PIP_CERT_HOST" | cut -d' ' -f1)" >"$CHECK/bundle.sha256"
  mozilla="$(python3 -c 'from pip._vendor import certifi; print(certifi.where())' 2>/dev/null || true)"
  python3 - "$PIP_CERT_HOST" "${mozilla:-/dev/null}" >"$CHECK/site-certs.txt" <<'EOF'
import glob, re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
def blocks(path):
    return {"".join(b.split()) for b in pem.findall(open(path, encoding="latin-1").read())}
public = blocks(sys.argv[2])
for f in glob.glob("/usr/share/ca-certificates/mozilla/*.crt"):
    public |= blocks(f)
for b in sorted(blocks(sys.argv[1]) - public):
    print(b)
EOF
fi
cat >"$CHECK/search.py" <<'EOF'
import hashlib, os, re, sys
pem = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
strings = [s.encode() for s in open("/check/strings.txt").read().split("\n") if s]
site = {s.encode() for s in open("/check/site-certs.txt").read().split("\n") if s}
bundle = open("/check/bundle.sha256").read().split()
names = re.compile(r"(^ca\.pem$|^pip\.conf$|^torch-.*\.whl$)")
root_dev = os.stat("/").st_dev
nfiles = npem = 0
bad = []
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.lstat(os.path.join(top, d)).st_dev == root_dev and d != "check"]
    if "build-extra" in top:
        bad.append(f"build-only directory {top}")
    for name in files:
        path = os.path.join(top, name)
        try:
            st = os.lstat(path)
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            data = open(path, "rb").read()
        except OSError:
            continue
        nfiles += 1
        if names.search(name):
            bad.append(f"build-only file {path}")
        if bundle and st.st_size == int(bundle[0]) and hashlib.sha256(data).hexdigest() == bundle[1]:
            bad.append(f"the host's CA bundle: {path}")
        for s in strings:
            if s in data:
                bad.append(f"{s.decode()!r} in {path}")
        if b"-----BEGIN CERTIFICATE-----" in data:
            npem += 1
            if site & {b"".join(b.split()) for b in pem.findall(data)}:
                bad.append(f"a site CA certificate of the host's bundle in {path}")
print(f"searched {nfiles} files ({npem} with PEM certificates) for {len(strings)} strings, "
      f"{len(site)} site CA certificate(s) and the host bundle's sha256")
for b in bad:
    print("FOUND", b)
sys.exit(1 if bad else 0)
EOF
if ! docker run --rm --network none --user 0:0 --entrypoint /usr/bin/python3 -v "$CHECK:/check:ro" "$IMAGE" \
    /check/search.py >"$SMOKE_DIR/image-search.txt" 2>&1; then
  cat "$SMOKE_DIR/image-search.txt" >&2
  die "the image contains the CA bundle, a pip index URL or a build-only file (above)"
fi
log "file search: $(cat "$SMOKE_DIR/image-search.txt"); none found"

# ---------------------------------------------------------------- phantom dataset on the host
VENV="${BIDS_FCD_VENV:-$REPO/.venv}"
log "writing the phantom dataset (2 FCD + 1 control, seed 1234)"
if [ -x "$VENV/bin/bids-fcd" ]; then
  "$VENV/bin/bids-fcd" phantom "$BIDS" --n-fcd 2 --n-hc 1 --seed 1234 >"$SMOKE_DIR/phantom.log" 2>&1 \
    || { cat "$SMOKE_DIR/phantom.log" >&2; die "phantom generation failed"; }
else
  log "no host venv at $VENV: writing the phantom with the image instead"
  chmod 0777 "$SMOKE_DIR"
  docker run --rm --network none --user "$SMOKE_USER" -v "$SMOKE_DIR:/smoke" "$IMAGE" \
    phantom /smoke/bids --n-fcd 2 --n-hc 1 --seed 1234 >"$SMOKE_DIR/phantom.log" 2>&1 \
    || { cat "$SMOKE_DIR/phantom.log" >&2; die "phantom generation failed"; }
  chmod 0755 "$SMOKE_DIR"
fi
snapshot() { (cd "$1" && find . -printf '%y %m %p\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
snapshot "$BIDS" >"$SMOKE_DIR/input-before.txt"

mkdir -p "$OUT" "$WORK"
chown "$RUN_UID:$RUN_GID" "$OUT" "$WORK"

DOCKER_RUN=(docker run --rm --read-only --tmpfs /tmp --network none --user "$SMOKE_USER"
            -v "$BIDS:/data:ro" -v "$OUT:/out" -v "$WORK:/work" "$IMAGE")

peak_mem_of() {  # CID: the container's peak memory in MB so far (cgroup v1 or v2), or nothing
  local f
  for f in "/sys/fs/cgroup/memory/docker/$1/memory.max_usage_in_bytes" "/sys/fs/cgroup/docker/$1/memory.peak" \
           "/sys/fs/cgroup/system.slice/docker-$1.scope/memory.peak"; do
    [ -r "$f" ] && { echo $(( $(cat "$f" 2>/dev/null || echo 0) / 1000000 )); return 0; }
  done
  return 0  # the cgroup is gone once the container has exited
}
run_level() {  # LEVEL: run it in the container; sets RUN_S and PEAK_MB (peak memory, if the cgroup shows it)
  local level="$1" cidfile="$SMOKE_DIR/$1.cid" pid cid="" m
  rm -f "$cidfile"; PEAK_MB=0
  t0=$(date +%s)
  "${DOCKER_RUN[@]:0:2}" --cidfile "$cidfile" "${DOCKER_RUN[@]:2}" /data /out "$level" --work-dir /work \
    >"$SMOKE_DIR/$level.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    [ -n "$cid" ] || cid="$(cat "$cidfile" 2>/dev/null || true)"
    if [ -n "$cid" ]; then m="$(peak_mem_of "$cid" || true)"; [ -z "$m" ] || [ "$m" -le "$PEAK_MB" ] || PEAK_MB=$m; fi
    sleep 1
  done
  wait "$pid" || { tail -40 "$SMOKE_DIR/$level.log" >&2; die "$level level failed; see $SMOKE_DIR/$level.log"; }
  RUN_S=$(( $(date +%s) - t0 ))
}

# ---------------------------------------------------------------- participant level
log "participant level (3 participants) in the container"
run_level participant
PART_S=$RUN_S; PART_MB=$PEAK_MB

# ---------------------------------------------------------------- group level
log "group level in the container"
run_level group
GROUP_S=$RUN_S; GROUP_MB=$PEAK_MB

# ---------------------------------------------------------------- resume
log "participant level again: complete participants are skipped, their outputs unchanged"
outsums() { (cd "$OUT" && find . -path './sub-*' -type f -print0 | sort -z | xargs -0 sha256sum); }
outsums >"$SMOKE_DIR/outputs-before-rerun.txt"
mv "$SMOKE_DIR/participant.log" "$SMOKE_DIR/participant-first.log"
run_level participant
RESUME_S=$RUN_S
mv "$SMOKE_DIR/participant.log" "$SMOKE_DIR/participant-rerun.log"
mv "$SMOKE_DIR/participant-first.log" "$SMOKE_DIR/participant.log"
outsums | diff -q "$SMOKE_DIR/outputs-before-rerun.txt" - >/dev/null \
  || die "rerunning the participant level changed complete outputs (no --overwrite was given)"

# ---------------------------------------------------------------- checks
log "checking the derivatives"
missing=0; nexp=0
while IFS= read -r rel || [ -n "$rel" ]; do
  rel="${rel%%#*}"; rel="$(echo "$rel" | tr -d '[:space:]')"
  [ -n "$rel" ] || continue
  nexp=$((nexp + 1))
  # res-RES in the stored list stands for the model grid's resolution label (res-2 for the shipped model)
  compgen -G "$OUT/${rel//res-RES/res-*}" >/dev/null && continue
  case "$rel" in
    *.html) warn "report missing: $rel" ;;
    *) log "missing: $rel"; missing=$((missing + 1)) ;;
  esac
done <"$REPO/tests/data/expected_outputs.txt"
nexp=$((nexp + 1))
[ -e "$OUT/group_summary.tsv" ] || { log "missing: group_summary.tsv"; missing=$((missing + 1)); }
[ -n "$(find "$OUT" -maxdepth 2 -name group.html -print -quit)" ] || warn "group report missing: group.html"
[ "$missing" = 0 ] || die "$missing of $nexp expected derivatives missing"
log "all $nexp expected derivatives present ($WARNINGS warning(s))"

foreign="$(find "$OUT" "$WORK" \( ! -uid "$RUN_UID" -o ! -gid "$RUN_GID" \) -print | head -5)"
[ -z "$foreign" ] || die "outputs not owned by $SMOKE_USER: $foreign"
log "every output and work file is owned by $SMOKE_USER"

snapshot "$BIDS" >"$SMOKE_DIR/input-after.txt"
diff -u "$SMOKE_DIR/input-before.txt" "$SMOKE_DIR/input-after.txt" >&2 || die "the input dataset changed"
log "input dataset byte-identical ($(grep -c '^f ' "$SMOKE_DIR/input-before.txt") files, sha256)"

# ---------------------------------------------------------------- GPU (documented, not required)
if gpu_err="$(docker run --rm --gpus all --network none "$IMAGE" --version 2>&1)"; then
  GPU_NOTE="docker run --gpus all works on this machine ($gpu_err); the -cpu image still runs on the CPU"
else
  GPU_NOTE="docker run --gpus all is unavailable here (expected without the NVIDIA container toolkit): $(echo "$gpu_err" | grep -m1 -i error || echo "$gpu_err" | head -1)"
fi
log "$GPU_NOTE"

# ---------------------------------------------------------------- figures
cat <<EOF

bids-fcd docker smoke test: PASSED ($WARNINGS warning(s))
  image                 $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c8-19))
  build time            ${BUILD_S} s$([ "$BUILD_S" = 0 ] && echo " (reused)")
  image size            ${SIZE_MB} MB
  participant level     ${PART_S} s, peak memory ${PART_MB} MB (3 tiny phantom participants, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))
  group level           ${GROUP_S} s, peak memory ${GROUP_MB} MB
  resumed rerun         ${RESUME_S} s (participant level again, every participant complete and skipped)
  demo total            $((PART_S + GROUP_S)) s
  container             --read-only --tmpfs /tmp --network none --user $SMOKE_USER, /data:ro
  outputs               $OUT ($(find "$OUT" -type f | wc -l) files)
  GPU                   $GPU_NOTE
EOF

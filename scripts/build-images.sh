#!/usr/bin/env bash
# Build tuner's two images with buildah and run them with podman: no Docker engine, and no
# image registry needed (a local Debian bookworm base is made with debootstrap when
# python:3.11-slim-bookworm cannot be pulled). Run as root from anywhere; `make docker`
# runs `build`.
#
#   scripts/build-images.sh build [--base auto|local|IMAGE] [--target slim|tensorflow]...
#       Builds localhost/tuner:slim and localhost/tuner:tensorflow from docker/Dockerfile
#       (`buildah bud --isolation=chroot --layers`); prints each build's time and the sizes.
#       --base auto (default): the registry's python:3.11-slim-bookworm if it is here or can
#       be pulled, else the local base. --target: only these (repeatable).
#   scripts/build-images.sh base [--refresh]
#       Only the local base, localhost/tuner-base:bookworm: debootstrap --variant=minbase
#       bookworm with python3, python3-venv and ca-certificates. The rootfs tarball is
#       cached in $TUNER_BUILD_CACHE (default /var/cache/tuner-build) and the image kept, so
#       a second run takes no time; --refresh makes both again (for security updates).
#   scripts/build-images.sh run --storage URL [--port 8000] [--listen 127.0.0.1]
#           [--api-image IMAGE] [--worker-image IMAGE] [--prefix tuner] [--env NAME=VALUE]...
#       Starts the API (slim image: `tuner serve --storage URL`) and one worker (tensorflow
#       image: `tuner worker --storage URL`) with `podman run --network host`, and waits for
#       the API's /healthz. PGPASSWORD, TUNER_API_TOKEN and TUNER_ADMIN_TOKEN pass from this
#       environment by name (never on a command line). The worker shares the volume
#       PREFIX-host (host lock, system journal) with any other worker started with PREFIX.
#   scripts/build-images.sh stop [--prefix tuner] [--volumes]
#       Stops both (the worker gets 10 minutes to finish its trial) and removes them;
#       --volumes also removes the PREFIX-host volume.
#
#       On hosts where crun refuses the cgroup layout (hybrid, controllers on v2) it runs
#       podman with runc if installed, and where root lacks CAP_SYS_RESOURCE it asks for no
#       more open files and processes than it has (podman's defaults would fail).
#
# Environment: TUNER_IMAGE (default localhost/tuner), TUNER_BUILD_CACHE, DEBIAN_MIRROR
# (default http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR, PIP_CERT (a CA bundle for pip behind a
# TLS-intercepting proxy: mounted into the build as BUILD_CA), PODMAN_RUNTIME (crun, runc).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${TUNER_IMAGE:-localhost/tuner}
REGISTRY_BASE=docker.io/library/python:3.11-slim-bookworm
LOCAL_BASE=localhost/tuner-base:bookworm
CACHE=${TUNER_BUILD_CACHE:-/var/cache/tuner-build}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
BUILD_CA_PATH=/run/tuner-build-ca.pem

log() { printf '%s\n' "build-images: $*" >&2; }
die() { log "$*"; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 is not installed (apt-get install $1)"; }
has_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }
now() { date +%s%N; }
since() {  # START (from now): the seconds since, to a tenth
    local tenths=$((($(now) - $1) / 100000000))
    printf '%d.%d' $((tenths / 10)) $((tenths % 10))
}

# --- the local base ----------------------------------------------------------------------
make_rootfs_tarball() {  # debootstrap bookworm into $CACHE/bookworm-rootfs.tar
    local rootfs=$CACHE/rootfs
    need debootstrap
    mkdir -p "$CACHE"
    rm -rf "$rootfs"
    log "debootstrap bookworm (minbase, python3, python3-venv) from $MIRROR"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $CACHE/debootstrap.log"
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
    # as Debian's slim images: no documentation, manual pages or translations, now or later
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<EOF
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    rm -rf "${rootfs:?}"/usr/share/man/* "${rootfs:?}"/usr/share/info/* "${rootfs:?}"/usr/share/locale/*
    log "security updates"
    chroot "$rootfs" sh -c 'apt-get update -q && apt-get upgrade -qy' >>"$CACHE/debootstrap.log" 2>&1 \
        || die "apt-get upgrade in the rootfs failed; see $CACHE/debootstrap.log"
    chroot "$rootfs" apt-get clean
    if findmnt -rn -o TARGET | grep -q "^$rootfs/"; then die "something is mounted in $rootfs"; fi
    rm -rf "${rootfs:?}"/var/lib/apt/lists/* "${rootfs:?}"/var/cache/apt/*.bin "${rootfs:?}"/tmp/* \
        "${rootfs:?}"/dev/*  # the container runtime makes /dev
    : >"$rootfs/etc/resolv.conf"  # the runtime provides it
    tar --numeric-owner -C "$rootfs" -cf "$CACHE/bookworm-rootfs.tar.partial" .
    mv "$CACHE/bookworm-rootfs.tar.partial" "$CACHE/bookworm-rootfs.tar"
    rm -rf "$rootfs"
}

import_base() {  # the cached tarball as the image $LOCAL_BASE
    local ctr
    ctr=$(buildah from scratch)
    buildah add --quiet "$ctr" "$CACHE/bookworm-rootfs.tar" / >/dev/null
    buildah config --env LANG=C.UTF-8 --cmd /bin/bash \
        --label org.opencontainers.image.description="Debian bookworm minbase, python3, python3-venv" \
        "$ctr"
    buildah commit --quiet --rm "$ctr" "$LOCAL_BASE" >/dev/null
}

ensure_local_base() {  # [--refresh]
    local start
    start=$(now)
    if [[ ${1:-} == --refresh ]]; then
        rm -f "$CACHE/bookworm-rootfs.tar"
        if has_image "$LOCAL_BASE"; then  # images built on it keep its layers
            buildah rmi "$LOCAL_BASE" >/dev/null 2>&1 || buildah untag "$LOCAL_BASE"
        fi
    fi
    if has_image "$LOCAL_BASE"; then
        log "base $LOCAL_BASE: cached"
        return
    fi
    [[ -f $CACHE/bookworm-rootfs.tar ]] || make_rootfs_tarball
    import_base
    log "base $LOCAL_BASE: made in $(since "$start") s"
}

choose_base() {  # auto|local|IMAGE -> the image to build on, on stdout
    case $1 in
        local) ensure_local_base; echo "$LOCAL_BASE" ;;
        auto)
            if has_image "$REGISTRY_BASE" || timeout 60 buildah pull --quiet "$REGISTRY_BASE" >/dev/null 2>&1; then
                echo "$REGISTRY_BASE"
            else
                log "$REGISTRY_BASE cannot be pulled: building on a local base"
                ensure_local_base
                echo "$LOCAL_BASE"
            fi ;;
        *) echo "$1" ;;
    esac
}

# --- the images --------------------------------------------------------------------------
build_target() {  # TARGET BASE
    local target=$1 base=$2 start previous
    local args=(bud --isolation=chroot --layers --target "$target" --build-arg "BASE=$base"
                -f "$ROOT/docker/Dockerfile" -t "$IMAGE:$target")
    if [[ -n ${PIP_CERT:-} && -f ${PIP_CERT:-} ]]; then
        args+=(--volume "$PIP_CERT:$BUILD_CA_PATH:ro" --build-arg "BUILD_CA=$BUILD_CA_PATH")
    fi
    start=$(now)
    log "building $IMAGE:$target on $base"
    previous=$(buildah images --quiet --no-trunc "$IMAGE:$target" 2>/dev/null || true)
    buildah "${args[@]}" "$ROOT" >&2
    log "built $IMAGE:$target in $(since "$start") s"
    if [[ -n $previous && $previous != "$(buildah images --quiet --no-trunc "$IMAGE:$target")" ]]; then
        buildah rmi "$previous" >/dev/null 2>&1 || true  # the image it replaced, unless in use
    fi
}

cmd_build() {
    local base=auto targets=() start chosen
    while (($#)); do
        case $1 in
            --base) base=$2; shift 2 ;;
            --target) targets+=("$2"); shift 2 ;;
            *) die "build: unknown option $1" ;;
        esac
    done
    ((${#targets[@]})) || targets=(slim tensorflow)
    need buildah
    start=$(now)
    chosen=$(choose_base "$base")
    for target in "${targets[@]}"; do build_target "$target" "$chosen"; done
    log "all built in $(since "$start") s"
    for target in "${targets[@]}"; do
        buildah images --format "{{.Name}}:{{.Tag}} {{.Size}}" "$IMAGE:$target"
    done
}

# --- running them ------------------------------------------------------------------------
has_cap_sys_resource() {
    local eff
    eff=$(awk '/^CapEff/ {print $2}' /proc/self/status)
    (((16#$eff >> 24) & 1))
}

podman_setup() {  # sets PODMAN (podman and its global options) and LIMITS for this host
    PODMAN=(podman)
    local runtime=${PODMAN_RUNTIME:-}
    if [[ -z $runtime && -n $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]] \
        && command -v runc >/dev/null; then
        runtime=runc  # crun refuses hybrid cgroups with controllers on the v2 hierarchy
    fi
    [[ -z $runtime ]] || PODMAN+=(--runtime "$runtime")
    LIMITS=()
    if ! has_cap_sys_resource; then
        # podman asks for more files and processes than a root without CAP_SYS_RESOURCE
        # may raise its limits to: ask for what we have (conmon itself gets <= 32768 procs)
        local files procs
        files=$(ulimit -Hn) procs=$(ulimit -Hu)
        if [[ $procs == unlimited ]] || ((procs > 32768)); then procs=32768; fi
        if [[ $files == unlimited ]]; then files=1048576; fi
        LIMITS=(--ulimit "nofile=$files:$files" --ulimit "nproc=$procs:$procs")
    fi
}

cmd_run() {
    local storage="" port=8000 listen=127.0.0.1 prefix=tuner
    local api_image=$IMAGE:slim worker_image=$IMAGE:tensorflow extra=()
    while (($#)); do
        case $1 in
            --storage) storage=$2; shift 2 ;;
            --port) port=$2; shift 2 ;;
            --listen) listen=$2; shift 2 ;;
            --prefix) prefix=$2; shift 2 ;;
            --api-image) api_image=$2; shift 2 ;;
            --worker-image) worker_image=$2; shift 2 ;;
            --env) extra+=(--env "$2"); shift 2 ;;
            *) die "run: unknown option $1" ;;
        esac
    done
    [[ -n $storage ]] || die "run: --storage URL is needed (postgresql://USER@HOST:PORT/DB)"
    local rest=${storage#*://}
    if [[ $rest == *@* && ${rest%%@*} == *:* ]]; then
        die "run: put the password in PGPASSWORD, not in the URL"
    fi
    need podman
    podman_setup
    local secrets=(--env PGPASSWORD --env TUNER_API_TOKEN --env TUNER_ADMIN_TOKEN)
    "${PODMAN[@]}" run --detach --replace --name "$prefix-api" --network host "${LIMITS[@]}" \
        "${secrets[@]}" "${extra[@]}" "$api_image" \
        serve --host "$listen" --port "$port" --storage "$storage" >/dev/null
    # the API first, so the worker finds its database ready (a worker racing it to
    # create the tables of a new one would wait for them, not fail)
    wait_healthy "$prefix-api" http "http://127.0.0.1:$port/healthz"
    # CAP_SYS_NICE: the seccomp profile allows numactl's set_mempolicy/mbind only with it
    "${PODMAN[@]}" run --detach --replace --name "$prefix-worker" --network host "${LIMITS[@]}" \
        --cap-add SYS_NICE --volume "$prefix-host:/var/lib/tuner" \
        --env PGPASSWORD "${extra[@]}" "$worker_image" \
        worker --storage "$storage" >/dev/null
    wait_healthy "$prefix-worker" db "$storage"
    log "API on http://$listen:$port (container $prefix-api), worker $prefix-worker"
}

wait_healthy() {  # CONTAINER CHECK URL: the image's own health check, for up to 60 s
    local container=$1 i
    for ((i = 0; i < 60; i++)); do
        if podman exec "$container" tuner-healthcheck "$2" "$3" 2>/dev/null; then return; fi
        if [[ $(podman inspect --format '{{.State.Running}}' "$container") != true ]]; then
            podman logs "$container" >&2
            die "$container exited"
        fi
        sleep 1
    done
    podman logs "$container" >&2
    die "$container is not healthy after 60 s"
}

cmd_stop() {
    local prefix=tuner volumes=false
    while (($#)); do
        case $1 in
            --prefix) prefix=$2; shift 2 ;;
            --volumes) volumes=true; shift ;;
            *) die "stop: unknown option $1" ;;
        esac
    done
    need podman
    podman rm --force --ignore --time 600 "$prefix-worker" "$prefix-api" >/dev/null
    if $volumes; then podman volume rm --force "$prefix-host" >/dev/null 2>&1 || true; fi
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

main() {
    local command=${1:-}
    case $command in build | base | run | stop) shift ;; *) usage ;; esac
    [[ $(id -u) == 0 ]] || die "run as root (buildah's chroot isolation, debootstrap, podman)"
    case $command in
        build) cmd_build "$@" ;;
        base) need buildah; ensure_local_base "$@" ;;
        run) cmd_run "$@" ;;
        stop) cmd_stop "$@" ;;
    esac
}

main "$@"

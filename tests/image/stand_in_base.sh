#!/bin/sh
# A stand-in for the official Python base image, which no registry here can serve: Debian
# bookworm (the official image's base) with its python3, built with debootstrap and imported.
#   usage: stand_in_base.sh ROOTFS_DIR IMAGE_TAG      (DOCKER: the docker client command)
set -eu
rootfs=$1
tag=$2
docker=${DOCKER:-docker}
if [ ! -x "$rootfs/usr/bin/python3" ]; then
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
        bookworm "$rootfs" http://deb.debian.org/debian
fi
# Trust what this machine trusts: its way to PyPI may pass a TLS proxy with a CA of its own.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
fi
chroot "$rootfs" update-ca-certificates >/dev/null
rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
# What the official image provides and the Dockerfile relies on: python and pip on PATH, a
# UTF-8 locale; uv reads SSL_CERT_FILE, and Debian's pip needs leave to install next to apt's.
tar -C "$rootfs" -c . | $docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
    --change 'CMD ["python3"]' \
    - "$tag"

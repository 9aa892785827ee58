# The eg R kernel image: eg's Python kernel image (the launcher and the Python it runs in) plus
# Debian's R and IRkernel. The launcher starts IRkernel as its child (--kernel-language r, or
# KERNEL_LANGUAGE=r from an R kernelspec). Built by build.sh --language r.
ARG BASE=eg/kernel-py:local
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends r-base-core r-cran-irkernel >/dev/null \
 && rm -rf /var/lib/apt/lists/*
